"""`tenantry audit list TENANT` and `tenantry audit verify TENANT`: read and check a tenant's chain;
`tenantry audit rotate-key`: a new version of the key that signs the chains' anchors."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

import typer

from tenantry.audit import anchors
from tenantry.audit import service as audit
from tenantry.audit.schemas import AuditEventOut, ChainOut
from tenantry.cli.common import emit, run_with_db
from tenantry.pages import MAX_LIMIT, Page
from tenantry.tenants import deletion
from tenantry.tenants import service as tenants

app = typer.Typer(help="Inspect the audit log.", no_args_is_help=True)


@app.command()
def verify(tenant: str) -> None:
    """Check that no audit event of TENANT was edited, removed or reordered (exit 1 if so).

    A deleted tenant's events were purged on purpose: its deletion receipt is shown instead."""

    async def work(db, stack):
        async with db.control() as session:
            row = await tenants.get(session, slug=tenant)
            receipt = await deletion.receipt_of(session, tenant_id=row.id)
        if receipt is not None:
            return ChainOut.deleted(receipt)
        async with db.tenant(row.id) as session:
            found = await audit.verify(session, tenant_id=row.id)
        return ChainOut.model_validate(found, from_attributes=True)

    report = run_with_db(work)
    emit({"tenant": tenant, **report.model_dump(mode="json")})
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_(
    tenant: str,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the last page.")] = None,
) -> None:
    """TENANT's audit events, newest first, a page at a time."""

    async def work(db, stack):
        async with db.control() as session:
            row = await tenants.get(session, slug=tenant)
        async with db.tenant(row.id) as session:
            events, next_cursor = await audit.list_events(
                session, tenant_id=row.id, cursor=cursor, limit=limit
            )
            items = [AuditEventOut.model_validate(e) for e in events]
        return Page[AuditEventOut](items=items, next_cursor=next_cursor, limit=limit)

    emit(run_with_db(work))


@app.command("rotate-key")
def rotate_key() -> None:
    """Start a new version of the key that signs audit anchors.

    Anchors made from now on use it; older anchors still verify under the version they name."""

    async def work(db, stack):
        return await asyncio.to_thread(anchors.rotate_key, stack.admin_url)

    emit(asdict(run_with_db(work)))
