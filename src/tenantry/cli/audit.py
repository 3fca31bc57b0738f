"""`tenantry audit verify TENANT`: walk a tenant's hash chain."""

from __future__ import annotations

import typer

from tenantry.audit import service as audit
from tenantry.audit.schemas import ChainOut
from tenantry.cli.common import emit, run_with_db
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
