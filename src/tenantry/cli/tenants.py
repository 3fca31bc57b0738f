"""`tenantry tenants …`: the same lifecycle service the admin API uses."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tenantry.audit import anchors
from tenantry.cli.common import cli_actor, emit, parse, run_with_db
from tenantry.pages import MAX_LIMIT, Page
from tenantry.tenants import cell_changes, service
from tenantry.tenants.cleanup import owner_url_of
from tenantry.tenants.schemas import TenantCreate, TenantOut, TenantUpdate

app = typer.Typer(help="Provision and manage tenants.", no_args_is_help=True)


@app.command()
def create(
    slug: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    tier: Annotated[str, typer.Option(help="free, standard or enterprise.")] = "free",
) -> None:
    """Provision a tenant."""
    data = parse(TenantCreate, slug=slug, name=name, tier=tier)

    async def work(db, stack):
        async with db.control() as session:
            tenant = await service.create(
                session, data=data, actor=cli_actor(), settings=stack.settings
            )
        return TenantOut.of(tenant)

    emit(run_with_db(work))


@app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option(help="active, suspended, deleting, deleted.")
    ] = None,
    tier: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the last page.")] = None,
) -> None:
    """List tenants by slug, a page at a time (deleted ones only with --status deleted)."""

    async def work(db, stack):
        async with db.control() as session:
            rows, next_cursor = await service.list_tenants(
                session, status=status, tier=tier, cursor=cursor, limit=limit
            )
        return Page[TenantOut](
            items=[TenantOut.of(t) for t in rows], next_cursor=next_cursor, limit=limit
        )

    emit(run_with_db(work))


@app.command()
def show(slug: str) -> None:
    """Show one tenant with its namespace."""

    async def work(db, stack):
        async with db.control() as session:
            return TenantOut.of(await service.get(session, slug=slug))

    emit(run_with_db(work))


@app.command()
def update(
    slug: str,
    name: Annotated[str | None, typer.Option()] = None,
    tier: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change a tenant's name or tier."""
    data = parse(TenantUpdate, name=name, tier=tier)

    async def work(db, stack):
        async with db.control() as session:
            tenant = await service.update(session, slug=slug, data=data, actor=cli_actor())
        await cell_changes.apply_owed(db, tenant)
        return TenantOut.of(tenant)

    emit(run_with_db(work))


@app.command()
def suspend(slug: str) -> None:
    """Refuse every request of the tenant with 403 until resumed."""

    async def work(db, stack):
        async with db.control() as session:
            tenant = await service.suspend(session, slug=slug, actor=cli_actor())
        await cell_changes.apply_owed(db, tenant)
        return TenantOut.of(tenant)

    emit(run_with_db(work))


@app.command()
def resume(slug: str) -> None:
    """Let a suspended tenant in again."""

    async def work(db, stack):
        async with db.control() as session:
            tenant = await service.resume(session, slug=slug, actor=cli_actor())
        await cell_changes.apply_owed(db, tenant)
        return TenantOut.of(tenant)

    emit(run_with_db(work))


@app.command()
def delete(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Purge every row of the tenant and mark it deleted (repeatable); then, as the owner role,
    its audit log, whose final head the deletion signed."""
    if not yes:
        typer.confirm(f"Delete tenant '{slug}' and all its data?", abort=True)

    async def work(db, stack):
        tenant, purged = await service.delete(db, slug=slug, actor=cli_actor())
        events = 0
        if tenant.status == "deleted":
            admin_url = await owner_url_of(db, tenant.id, stack.admin_url)
            events = await asyncio.to_thread(anchors.purge_deleted, admin_url, tenant_id=tenant.id)
        if events:
            purged = {**purged, "audit_events": events}
        return {"tenant": TenantOut.of(tenant).model_dump(mode="json"), "purged_rows": purged}

    emit(run_with_db(work))


@app.command()
def move(
    slug: str,
    cell: Annotated[str, typer.Option("--cell", help="The cell to move the tenant to.")],
    namespace: Annotated[
        bool,
        typer.Option(
            "--namespace", help="Into a silo cell: also give the tenant its own Temporal namespace."
        ),
    ] = False,
) -> None:
    """Move a tenant to another cell while it serves, and wait for the move: copy, a short hold
    of its writes, switch, purge of the source. Prints the move record as JSON."""
    from tenantry.cli.backup import Bar
    from tenantry.ops import moves
    from tenantry.ops.move import moved_tables
    from tenantry.ops.schemas import MoveOut

    async def work(db, stack):
        async with db.control() as session:
            tenant = await service.get_live(session, slug=slug)
            recorded = await moves.new_move(
                session,
                tenant=tenant,
                cell=cell,
                actor=cli_actor(),
                settings=stack.settings,
                namespace=namespace,
            )
        async with db.control() as session:
            tables = len(await moved_tables(session))
        with Bar(f"move {slug} to {cell}", tables) as bar:
            return await moves.run_move(
                db, move_id=recorded.id, admin_url=stack.admin_url, progress=bar
            )

    emit(MoveOut.model_validate(run_with_db(work)))
