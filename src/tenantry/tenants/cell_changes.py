"""Changes of a tenant placed in another cell: its control-plane row here, its own rows there.

A lifecycle change (suspend, resume, rename, tier, limit overrides) is made in a control-plane
transaction. What it also owes the tenant's own rows (the event in its audit chain, the `resume`
of its paused workflows, the start of a workflow through its outbox) cannot be written in that transaction when those
rows live in another database, so it is recorded there instead, as `cell_changes` rows of the
same transaction. `apply()` carries them into the tenant's cell in order, in one cell transaction
that also refreshes the cell's copy of the `tenants` row (what its request path checks) and
records the changes' ids (`cell_changes_applied`), then removes them here: a change applied
twice, by a retry after the cell committed or by two appliers at once, has its effects once.

Whoever made the change applies it as soon as it commits (the API before it answers, the CLI
before it returns), so a suspension already holds in the cell when the operator is told it is
done; the relay's chore (`ApplyCellChanges`) applies what could not be (the cell was away),
backing off per tenant. A change of a tenant in the main cell writes its rows directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from itertools import groupby
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.session import Database, set_tenant
from tenantry.ops.move import place_tenant_row
from tenantry.outbox import service as outbox
from tenantry.runtime.stopping import being_cancelled
from tenantry.tenancy.subjects import current_request_id
from tenantry.tenants.models import Tenant

log = structlog.get_logger("tenantry.cells")

# A tenant whose changes could not be applied waits this long, doubled each time, at most MAX.
BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 2, 300

OWE = text(
    "INSERT INTO cell_changes (tenant, effect, payload, request_id) "
    "VALUES (:tenant, :effect, CAST(:payload AS jsonb), :request_id)"
)
DUE = """
SELECT id, tenant, effect, payload, request_id, occurred_at FROM cell_changes
WHERE {where} ORDER BY tenant, id
"""
MARK = text(
    "INSERT INTO cell_changes_applied (tenant_id, change_id) VALUES (:tenant, :change) "
    "ON CONFLICT DO NOTHING RETURNING change_id"
)
DONE = text("DELETE FROM cell_changes WHERE id = ANY(:ids)")
POSTPONE = text(
    "UPDATE cell_changes SET attempts = attempts + 1, error = :error, "
    "due_at = clock_timestamp() + make_interval(secs => least(:base * power(2, attempts), :most)) "
    "WHERE id = ANY(:ids)"
)


def elsewhere(session: AsyncSession, tenant: Tenant) -> bool:
    """Whether the control-plane transaction `session` cannot write the tenant's own rows."""
    main = session.info.get("cell")
    return main is not None and tenant.cell != main


async def audit_event(
    session: AsyncSession,
    tenant: Tenant,
    *,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append the event to the tenant's chain: in this transaction, or owed to its cell."""
    event = {"actor": actor, "action": action, "target": target, "before": before, "after": after}
    if elsewhere(session, tenant):
        await _owe(session, tenant, "audit", event)
        return
    await set_tenant(session, tenant.id)
    await audit.record(session, tenant_id=tenant.id, **event)


async def resume_paused(session: AsyncSession, tenant: Tenant) -> None:
    """Resume the workflows that paused while the tenant was suspended (see `outbox`)."""
    if elsewhere(session, tenant):
        await _owe(session, tenant, "resume_paused", {})
        return
    await set_tenant(session, tenant.id)
    await outbox.resume_paused(session, tenant_id=tenant.id)


async def start_workflow(
    session: AsyncSession, tenant: Tenant, *, workflow_type: str, workflow_id: str, arg: Any
) -> None:
    """Start a workflow of the tenant through its outbox, once the change commits (`outbox.start`)."""
    start = {"workflow_type": workflow_type, "workflow_id": workflow_id, "arg": arg}
    if elsewhere(session, tenant):
        await _owe(session, tenant, "outbox_start", start)
        return
    await set_tenant(session, tenant.id)
    await outbox.start(session, tenant_id=tenant.id, **start)
    await outbox.wake(session, tenant_id=tenant.id)


async def _owe(session: AsyncSession, tenant: Tenant, effect: str, payload: dict) -> None:
    await session.execute(
        OWE,
        {
            "tenant": tenant.id,
            "effect": effect,
            "payload": json.dumps(payload, default=str),
            "request_id": current_request_id(),
        },
    )
    await outbox.wake(session, tenant_id=outbox.CHORES)  # the relay's chore, should we fail


async def _record_audit(session: AsyncSession, tenant_id: uuid.UUID, change) -> None:
    await audit.record(
        session,
        tenant_id=tenant_id,
        occurred_at=change.occurred_at,
        request_id=change.request_id,
        **change.payload,
    )


async def _resume_paused(session: AsyncSession, tenant_id: uuid.UUID, change) -> None:
    await outbox.resume_paused(session, tenant_id=tenant_id)


async def _start_workflow(session: AsyncSession, tenant_id: uuid.UUID, change) -> None:
    await outbox.start(session, tenant_id=tenant_id, **change.payload)
    await outbox.wake(session, tenant_id=tenant_id)  # the cell's relay delivers it


EFFECTS: dict[str, Callable[[AsyncSession, uuid.UUID, Any], Awaitable[None]]] = {
    "audit": _record_audit,
    "resume_paused": _resume_paused,
    "outbox_start": _start_workflow,
}


async def apply_owed(db: Database, tenant: Tenant) -> None:
    """After a change of `tenant` committed: carry what it owes its cell there now. A failure is
    logged and left to the relay's chore (the change is recorded; it will be applied)."""
    if db.cells is None or tenant.cell == db.cells.main.name:
        return
    try:
        await apply(db, tenant_id=tenant.id)
    except Exception:
        log.warning(
            "change not yet applied in the tenant's cell", tenant=tenant.slug, exc_info=True
        )


async def apply(db: Database, *, tenant_id: uuid.UUID | None = None) -> int:
    """Apply the changes owed to cells (those of `tenant_id` now; otherwise every tenant's that
    are due), in order per tenant; a tenant whose changes fail waits, the others go on. Returns
    how many changes were applied."""
    where = "tenant = :tenant" if tenant_id else "due_at <= clock_timestamp()"
    async with db.control() as session:
        rows = (await session.execute(text(DUE.format(where=where)), {"tenant": tenant_id})).all()
    applied = 0
    for tenant, changes in groupby(rows, key=lambda row: row.tenant):
        changes = list(changes)
        try:
            applied += await _apply_tenant(db, tenant, changes)
        except Exception as error:
            if being_cancelled() or tenant_id is not None:
                raise
            log.warning(
                "changes not applied in the tenant's cell", tenant=str(tenant), exc_info=True
            )
            async with db.control() as session:
                await session.execute(
                    POSTPONE,
                    {
                        "ids": [change.id for change in changes],
                        "error": str(error)[:500],
                        "base": BACKOFF_SECONDS,
                        "most": MAX_BACKOFF_SECONDS,
                    },
                )
    return applied


async def refresh_copy(db: Database, session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Rewrite, in `session` (a transaction of the tenant in its cell), the cell's copy of the
    tenant's row from the control plane's as it is now; nothing in the main cell, where the row
    is the control plane's own."""
    cell = session.info.get("tenant_cell")
    if cell is None or cell is db.cells.main:
        return
    async with db.cells.main.engine.connect() as control:
        source = (await control.get_raw_connection()).driver_connection
        target = (await (await session.connection()).get_raw_connection()).driver_connection
        await place_tenant_row(
            source, target, tenant_id=tenant_id, cell=cell.name, keep_placement=True
        )


async def _apply_tenant(db: Database, tenant_id: uuid.UUID, changes: list) -> int:
    applied = 0
    async with db.tenant(tenant_id) as session:
        # First, before the chain's lock: the copy the cell's request path reads.
        await refresh_copy(db, session, tenant_id)
        for change in changes:
            first = await session.scalar(MARK, {"tenant": tenant_id, "change": change.id})
            if first is None:
                continue  # applied already, by another applier or before a lost answer
            await EFFECTS[change.effect](session, tenant_id, change)
            applied += 1
    async with db.control() as session:
        await session.execute(DONE, {"ids": [change.id for change in changes]})
    return applied


class ApplyCellChanges:
    """The relay's chore: every sweep (and when a change wakes it), apply what is due."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self) -> int:
        if self.db.cells is None:
            return 0
        return await apply(self.db)
