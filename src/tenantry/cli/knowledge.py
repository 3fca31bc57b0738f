"""`tenantry knowledge promote`: give tenants past the threshold their own HNSW index."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli.common import emit, opened_stack, run_with_db
from tenantry.knowledge.promotion import promote
from tenantry.tenants import service as tenants

app = typer.Typer(help="Knowledge base maintenance.", no_args_is_help=True)


@app.command("promote")
def promote_command(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    threshold: Annotated[
        int | None, typer.Option(help="Chunks; default: TENANTRY_HNSW_THRESHOLD.")
    ] = None,
) -> None:
    """Build the per-tenant HNSW indexes that are due (concurrently)."""
    tenant_id = None
    if tenant:

        async def work(db, stack):
            async with db.control() as session:
                return (await tenants.get(session, slug=tenant)).id

        tenant_id = run_with_db(work)
    with opened_stack() as stack:
        limit = threshold or stack.settings.hnsw_threshold
        done = promote(stack.admin_url, threshold=limit, tenant_id=tenant_id)
    emit([{"tenant_id": str(p.tenant_id), "chunks": p.chunks, "built": p.built} for p in done])
