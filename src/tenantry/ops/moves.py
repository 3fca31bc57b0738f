"""Moving a tenant online between cells (pool and silo): the service behind the admin API, the
MoveTenant workflow's activity and the CLI.

A move copies the tenant into the target cell while it keeps serving (`move.sync` from a
snapshot), then holds its writes (an exclusive advisory lock on the tenant in the source cell:
reads go on, writes answer 503 `tenant-moving`), carries over what changed since the copy,
switches the placement (the target's copy of the tenant row, then the source's, then the control
plane's), releases the hold, purges the source and records `tenant.moved` in the tenant's chain,
in the same transaction as the tenant's dedicated workers turned on for a silo cell and off for
a pool one (`ops/silo.py`).
Every step is repeatable, so a retried activity finishes a move a worker dropped half-way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import psycopg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.cells import Cell, admin_url_of
from tenantry.db.paging import Keyset, page
from tenantry.db.session import Database, set_tenant
from tenantry.db.urls import libpq_dsn
from tenantry.errors import Conflict, NotFound, ValidationFailed
from tenantry.ops.models import TenantMove
from tenantry.ops.move import Progress, begun, place_tenant_row, sync
from tenantry.ops.silo import place_workers
from tenantry.outbox import service as outbox
from tenantry.settings import Settings, get_settings
from tenantry.tenants import cells as registry
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Cell as RegisteredCell
from tenantry.tenants.models import Tenant

WORKFLOW = "MoveTenant"
MOVES = Keyset("moves", (TenantMove.created_at, TenantMove.id), descending=True)
HOLD = "SELECT pg_advisory_xact_lock(tenantry_hold_key(%s))"
PLACE = "UPDATE tenants SET cell = %s WHERE id = %s"
PLACED = "SELECT cell FROM tenants WHERE id = %s"
CLAIM = "SELECT pg_try_advisory_lock(tenantry_hold_key(%s))"
UNCLAIM = "SELECT pg_advisory_unlock(tenantry_hold_key(%s))"


class MoveBusy(Conflict):
    code, title = "move-busy", "Move being carried out elsewhere"


class AlreadyThere(Conflict):
    code, title = "tenant-already-in-cell", "Tenant already in that cell"


class MoveInProgress(Conflict):
    code, title = "move-in-progress", "A move of this tenant is in progress"


async def check_cell(session: AsyncSession, *, name: str, settings: Settings) -> None:
    if name == settings.cell:
        return
    if await session.get(RegisteredCell, name) is None:
        raise ValidationFailed(
            f"No cell named '{name}'.",
            code="unknown-cell",
            errors=[{"field": "cell", "message": f"no cell named '{name}'"}],
        )


async def request_move(
    session: AsyncSession,
    *,
    slug: str,
    cell: str,
    actor: str,
    settings: Settings,
    namespace: bool = False,
) -> TenantMove:
    """Record a move; for a tenant in the main cell, also start its workflow once this
    transaction commits. A tenant in another cell has its outbox there: `enqueue` the start in
    a transaction of its own, in that cell, once this one has committed."""
    tenant = await tenants.get_live(session, slug=slug)
    move = await new_move(
        session, tenant=tenant, cell=cell, actor=actor, settings=settings, namespace=namespace
    )
    if tenant.cell == settings.cell:
        await enqueue(session, move=move)
    return move


async def enqueue(session: AsyncSession, *, move: TenantMove) -> None:
    """The start of the move's workflow, in the outbox of the cell the tenant is in."""
    await set_tenant(session, move.tenant)  # the outbox is the tenant's, under RLS
    await outbox.start(
        session,
        tenant_id=move.tenant,
        workflow_type=WORKFLOW,
        workflow_id=f"{move.slug}/move/{move.id}",
        arg={"tenant_id": str(move.tenant), "move_id": str(move.id)},
    )
    await outbox.wake(session, tenant_id=move.tenant)


async def new_move(
    session: AsyncSession,
    *,
    tenant: Tenant,
    cell: str,
    actor: str,
    settings: Settings,
    namespace: bool = False,
) -> TenantMove:
    """Record a move (the CLI runs it in its own process, the API through the workflow);
    `namespace` asks for the tenant's own Temporal namespace, which only a silo cell gives."""
    slug = tenant.slug
    await check_cell(session, name=cell, settings=settings)
    if namespace and await registry.kind_of(session, name=cell, settings=settings) != registry.SILO:
        raise ValidationFailed(
            f"Cell '{cell}' is a pool cell: only a move into a silo cell gives a namespace.",
            errors=[{"field": "namespace", "message": "only for a move into a silo cell"}],
        )
    if tenant.cell == cell:
        raise AlreadyThere(f"Tenant '{slug}' is already in cell '{cell}'.")
    running = await session.scalar(
        select(TenantMove.id).where(
            TenantMove.tenant == tenant.id, TenantMove.status.in_(("queued", "running"))
        )
    )
    if running is not None:
        raise MoveInProgress(f"Move {running} of tenant '{slug}' is not finished yet.")
    move = TenantMove(
        id=uuid.uuid4(),
        tenant=tenant.id,
        slug=tenant.slug,
        source=tenant.cell,
        target=cell,
        status="queued",
        stage="queued",
        progress={},
        requested_by=actor,
        namespace_asked=namespace,
    )
    session.add(move)
    await session.flush()
    return move


async def get_move(
    session: AsyncSession, *, tenant_id: uuid.UUID, move_id: uuid.UUID
) -> TenantMove:
    move = await session.scalar(
        select(TenantMove).where(TenantMove.tenant == tenant_id, TenantMove.id == move_id)
    )
    if move is None:
        raise NotFound(f"No move {move_id} of this tenant.")
    return move


async def list_moves(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[TenantMove], str | None]:
    query = select(TenantMove).where(TenantMove.tenant == tenant_id)
    return await page(session, query, keyset=MOVES, cursor=cursor, limit=limit)


async def run_move(
    db: Database,
    *,
    move_id: uuid.UUID,
    admin_url: str | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> TenantMove:
    """Carry out the recorded move. Repeatable until it is done; one run of a move at a time
    (a second, say a retried activity beside a stuck first attempt, is refused: `MoveBusy`).
    `settings`: what the tenant's new configuration version is checked against (default: the
    process's)."""
    settings = settings or get_settings()
    # A session lock on a connection of its own (not one of the pool's, which the move needs):
    # released with the connection, should this process die.
    dsn = libpq_dsn(db.engine.url)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as claim:
        taken = await (await claim.execute(CLAIM, [move_id])).fetchone()
        if not taken[0]:
            raise MoveBusy(f"Move {move_id} is being carried out elsewhere.")
        try:
            return await _run(db, move_id, admin_url, progress, settings)
        finally:
            await claim.execute(UNCLAIM, [move_id])


async def _run(
    db: Database,
    move_id: uuid.UUID,
    admin_url: str | None,
    progress: Progress | None,
    settings: Settings,
) -> TenantMove:
    async with db.control() as session:
        move = await session.get(TenantMove, move_id, with_for_update=True)
        if move is None:
            raise NotFound(f"No move {move_id}.")
        if move.status == "done":
            return move
        tenant = await session.get(Tenant, move.tenant)
        kind = await registry.kind_of(session, name=move.target, settings=settings)
        move.status, move.stage = "running", "copying"
    try:
        return await _carry_out(db, move, tenant, admin_url, progress, (kind, settings))
    except Exception as error:
        await _set(db, move_id, status="failed", error=f"{type(error).__name__}: {error}"[:1000])
        raise


async def _carry_out(
    db: Database,
    move: TenantMove,
    tenant: Tenant,
    admin_url: str | None,
    progress: Progress | None,
    placement: tuple[str, Settings],
) -> TenantMove:
    cells = db.cells
    source, target = await cells.named(move.source), await cells.named(move.target)
    tenant_id = tenant.id
    counts: dict[str, int] = {}
    copy_ms = hold_ms = None
    if tenant.cell != move.target:  # not switched yet (a retried activity may find it done)

        async def step(table: str, rows: int) -> None:
            counts[table] = rows
            await _set(db, move.id, progress=dict(counts))
            if progress is not None:
                await progress(table, rows)

        started = time.monotonic()
        await place_row(cells.main, target, tenant_id, placed=move.source)
        async with (
            begun(source.engine, tenant_id, snapshot=True) as src,
            begun(target.engine, tenant_id) as dst,
        ):
            await sync(src, dst, tenant_id=tenant_id, progress=step)
        copy_ms = int((time.monotonic() - started) * 1000)
        await _set(db, move.id, stage="holding", copy_ms=copy_ms)
        caught, hold_ms = await _hold_and_switch(cells.main, source, target, tenant_id)
        for table, rows in caught.items():
            counts[table] = counts.get(table, 0) + rows
        cells.forget(tenant_id)
    await _set(db, move.id, stage="purging", progress=dict(counts), hold_ms=hold_ms)
    purged = await _purge(source, tenant_id, admin_url)
    kind, settings = placement
    async with db.tenant(tenant_id) as session:
        workers = await place_workers(
            session,
            tenant=tenant,
            kind=kind,
            move_id=move.id,
            actor=move.requested_by,
            settings=settings,
            namespace=move.namespace_asked,
        )
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor=move.requested_by,
            action="tenant.moved",
            target=f"tenant:{tenant.slug}",
            before={"cell": move.source},
            after={
                "cell": move.target,
                "move": str(move.id),
                "rows": sum(counts.values()),
                "copy_ms": copy_ms,
                "hold_ms": hold_ms,
                "purged": purged,
                "dedicated_workers": workers.dedicated,
                "own_namespace": workers.own_namespace,
                "config_version": workers.config_version,
            },
        )
    async with db.control() as session:
        done = await session.get(TenantMove, move.id, with_for_update=True)
        done.status, done.stage, done.finished_at = "done", "done", utcnow()
        done.rows = sum(counts.values()) or done.rows
        done.dedicated_workers = workers.dedicated
        done.own_namespace = workers.own_namespace
        done.error = None
    return done


async def place_row(main: Cell, target: Cell, tenant_id: uuid.UUID, *, placed: str) -> None:
    """The tenant's row in the target cell, still saying it is placed in the source."""
    if target is main:
        return
    async with main.engine.connect() as conn:
        control = (await conn.get_raw_connection()).driver_connection
        async with begun(target.engine, tenant_id) as (_, dst):
            await place_tenant_row(control, dst, tenant_id=tenant_id, cell=placed)


async def _hold_and_switch(
    main: Cell, source: Cell, target: Cell, tenant_id: uuid.UUID
) -> tuple[dict[str, int], int]:
    """Hold the tenant's writes in the source, copy what changed, switch the placement, release.
    The hold begins once every write transaction in flight has ended (the lock waits for them)."""
    async with source.engine.connect() as conn:
        hold = (await conn.get_raw_connection()).driver_connection
        await hold.execute("BEGIN")
        try:
            await hold.execute(HOLD, [tenant_id])
            held_at = time.monotonic()
            await _still_placed(main, source, tenant_id)
            # A snapshot taken now sees every write the source will ever have of the tenant.
            async with (
                begun(source.engine, tenant_id, snapshot=True) as src,
                begun(target.engine, tenant_id) as dst,
            ):
                caught = await sync(src, dst, tenant_id=tenant_id)
                await dst[1].execute(PLACE, [target.name, tenant_id])
            await hold.execute(PLACE, [target.name, tenant_id])
            await hold.execute("COMMIT")
        except BaseException:
            await hold.rollback()
            raise
    hold_ms = int((time.monotonic() - held_at) * 1000)
    if main not in (source, target):
        async with main.engine.connect() as conn:
            control = (await conn.get_raw_connection()).driver_connection
            await control.execute(PLACE, [target.name, tenant_id])
    return caught, hold_ms


async def _still_placed(main: Cell, source: Cell, tenant_id: uuid.UUID) -> None:
    """Under the hold: the control plane still places the tenant in the source (or the copy
    would carry over rows from a cell it has left)."""
    async with main.engine.connect() as conn:
        control = (await conn.get_raw_connection()).driver_connection
        (placed,) = await (await control.execute(PLACED, [tenant_id])).fetchone()
    if placed != source.name:
        raise Conflict(f"The tenant is in cell '{placed}' now, not '{source.name}'.")


async def _purge(source: Cell, tenant_id: uuid.UUID, admin_url: str | None) -> dict[str, Any]:
    """The tenant's rows left in the source; its audit chain there with the owner's rights."""
    pinned = Database(source.engine)  # no routing: this cell's rows, wherever the tenant is now
    async with pinned.tenant(tenant_id) as session:
        purged: dict[str, Any] = await tenants.purge_rows(session, tenant_id=tenant_id)
    if admin_url is not None:
        url = admin_url_of(source, admin_url)
        purged["audit_events"] = await asyncio.to_thread(_purge_audit, url, tenant_id, source.name)
    return {table: rows for table, rows in purged.items() if rows}


def _purge_audit(admin_url: str, tenant_id: uuid.UUID, cell: str) -> int:
    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as conn:
        return int(
            conn.execute("SELECT audit_purge_moved(%s, %s)", [tenant_id, cell]).fetchone()[0]
        )


async def _set(db: Database, move_id: uuid.UUID, **values: Any) -> None:
    async with db.control() as session:
        await session.execute(update(TenantMove).where(TenantMove.id == move_id).values(**values))
