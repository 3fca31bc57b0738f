"""`workflows_in_flight`: a slot per running workflow of the tenant, taken by the relay when it
starts one and given back when the workflow ends (its last activity, or the relay finding it
closed: failed, terminated, timed out)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.outbox.models import OutboxMessage, WorkflowSlot

# One reserver per tenant at a time; only the relay takes it, once per transaction.
LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('tenantry:slots:' || :tid, 0))")


async def reserve(
    session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str, limit: int
) -> bool:
    """Take a slot for `workflow_id` if the tenant has room (a workflow that holds one keeps it)."""
    await session.execute(LOCK, {"tid": str(tenant_id)})
    held = await session.scalar(
        select(func.count()).where(
            WorkflowSlot.tenant_id == tenant_id, WorkflowSlot.workflow_id == workflow_id
        )
    )
    if held:
        return True
    used = await session.scalar(select(func.count()).where(WorkflowSlot.tenant_id == tenant_id))
    if int(used or 0) >= limit:
        return False
    await session.execute(
        insert(WorkflowSlot)
        .values(tenant_id=tenant_id, workflow_id=workflow_id)
        .on_conflict_do_nothing()
    )
    return True


async def release(session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str) -> bool:
    result = await session.execute(
        delete(WorkflowSlot).where(
            WorkflowSlot.tenant_id == tenant_id, WorkflowSlot.workflow_id == workflow_id
        )
    )
    return bool(result.rowcount)


async def holders(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[str]:
    return list(
        await session.scalars(
            select(WorkflowSlot.workflow_id).where(WorkflowSlot.tenant_id == tenant_id)
        )
    )


async def use(session: AsyncSession, *, tenant_id: uuid.UUID) -> tuple[int, int]:
    """(workflows holding one of the tenant's slots, starts still waiting in the outbox)."""
    in_flight = await session.scalar(
        select(func.count()).where(WorkflowSlot.tenant_id == tenant_id)
    )
    queued = await session.scalar(
        select(func.count()).where(
            OutboxMessage.tenant_id == tenant_id,
            OutboxMessage.kind == "start",
            OutboxMessage.counts_in_flight.is_(True),
            OutboxMessage.delivered_at.is_(None),
        )
    )
    return int(in_flight or 0), int(queued or 0)
