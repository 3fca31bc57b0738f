"""Writing to the outbox, in the caller's transaction: the message commits with the change or not
at all. The relay delivers it after the commit, with the deterministic workflow id given here."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import delete, exists, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.outbox.models import OutboxMessage, PausedWorkflow, ScheduleSync
from tenantry.tenants.models import Tenant

CHANNEL = "tenantry_outbox"  # NOTIFYed by a trigger on every new message, with the tenant's id
CHORES = "chores"  # a payload on the same channel: run the relay's chores (a deletion's clean-up)
REUSE_POLICIES = ("allow_duplicate", "allow_duplicate_failed_only", "reject_duplicate")


def _plain(arg: Any) -> dict[str, Any] | None:
    if arg is None:
        return None
    return dataclasses.asdict(arg) if dataclasses.is_dataclass(arg) else dict(arg)


async def start(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    workflow_type: str,
    workflow_id: str,
    arg: Any,
    counts_in_flight: bool = False,
    reuse: str = "reject_duplicate",
) -> OutboxMessage:
    """Start `workflow_type` as `workflow_id` once this transaction commits.

    Starting one that already runs (or ran, where `reuse` forbids another run) counts as done.
    """
    if reuse not in REUSE_POLICIES:
        raise ValueError(f"unknown reuse policy {reuse}")
    return await _add(
        session,
        OutboxMessage(
            tenant_id=tenant_id,
            kind="start",
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            arg=_plain(arg),
            counts_in_flight=counts_in_flight,
            reuse_policy=reuse,
        ),
    )


async def signal(
    session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str, name: str, arg: Any = None
) -> OutboxMessage:
    """Signal `workflow_id` once this transaction commits, after any earlier message to it."""
    return await _add(
        session,
        OutboxMessage(
            tenant_id=tenant_id,
            kind="signal",
            workflow_id=workflow_id,
            signal=name,
            arg=_plain(arg),
        ),
    )


async def cancel(session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str) -> OutboxMessage:
    return await _add(
        session, OutboxMessage(tenant_id=tenant_id, kind="cancel", workflow_id=workflow_id)
    )


async def withdraw_or_cancel(
    session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str
) -> str:
    """A workflow no longer wanted: its start withdrawn while still in the outbox, else cancelled.

    A relay delivering the start holds its row; this waits for that, then sees it delivered.
    """
    withdrawn = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant_id,
            OutboxMessage.workflow_id == workflow_id,
            OutboxMessage.delivered_at.is_(None),
        )
    )
    started = await session.scalar(
        select(
            exists().where(
                OutboxMessage.tenant_id == tenant_id,
                OutboxMessage.workflow_id == workflow_id,
                OutboxMessage.kind == "start",
            )
        )
    )
    if started:
        await cancel(session, tenant_id=tenant_id, workflow_id=workflow_id)
        return "cancel"
    return "withdrawn" if withdrawn.rowcount else "none"


async def _add(session: AsyncSession, message: OutboxMessage) -> OutboxMessage:
    message.id = uuid.uuid4()
    message.attempts = 0
    session.add(message)
    await session.flush()
    return message


async def start_pending(session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str) -> bool:
    """Whether the start of `workflow_id` is still waiting in the outbox."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    OutboxMessage.tenant_id == tenant_id,
                    OutboxMessage.workflow_id == workflow_id,
                    OutboxMessage.kind == "start",
                    OutboxMessage.delivered_at.is_(None),
                )
            )
        )
    )


async def pause_if_suspended(
    session: AsyncSession, *, tenant_id: uuid.UUID, workflow_id: str
) -> bool:
    """True (and the workflow noted as paused) when the tenant is suspended.

    The second read holds the tenant row in share mode, so a resume either commits first (and this
    sees `active`) or waits for this note and then signals the workflow.
    """
    status = await session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
    if status != "suspended":
        return False
    status = await session.scalar(
        select(Tenant.status).where(Tenant.id == tenant_id).with_for_update(read=True)
    )
    if status != "suspended":
        return False
    await session.execute(
        text(
            "INSERT INTO paused_workflows (tenant_id, workflow_id, paused_at) "
            "VALUES (:t, :w, now()) ON CONFLICT DO NOTHING"
        ),
        {"t": tenant_id, "w": workflow_id},
    )
    return True


async def wake(session: AsyncSession, *, tenant_id: uuid.UUID | str) -> None:
    """Wake the relay for this tenant (or `CHORES`) once the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": str(tenant_id)},
    )


async def resume_paused(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    """A `resume` signal to every workflow that paused while the tenant was suspended."""
    paused = (
        await session.scalars(
            delete(PausedWorkflow)
            .where(PausedWorkflow.tenant_id == tenant_id)
            .returning(PausedWorkflow.workflow_id)
        )
    ).all()
    for workflow_id in paused:
        await signal(session, tenant_id=tenant_id, workflow_id=workflow_id, name="resume")
    await wake(session, tenant_id=tenant_id)  # messages held while suspended may go too
    return len(paused)


async def sync_schedules(session: AsyncSession, *, tenant_id: uuid.UUID) -> None:
    """The tenant's backup schedules follow its state once this transaction commits: the relay's
    chore reads the tenant then (tier, status) and makes Temporal's schedules match."""
    now = text("clock_timestamp()")
    await session.execute(
        insert(ScheduleSync)
        .values(tenant=tenant_id, requested_at=now, due_at=now, attempts=0)
        .on_conflict_do_update(
            index_elements=[ScheduleSync.tenant],
            set_={"requested_at": now, "due_at": now, "attempts": 0, "error": None},
        )
    )
    await wake(session, tenant_id=CHORES)
