"""Write audit events in the caller's transaction, and verify a tenant's chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.chain import GENESIS, event_digest
from tenantry.audit.models import AuditEvent
from tenantry.db.base import utcnow
from tenantry.db.paging import page
from tenantry.tenancy.subjects import current_request_id
from tenantry.tenants.models import Tenant


async def record(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event; the session's transaction must have `tenant_id` set (RLS checks it)."""
    # Locking the head makes one writer per tenant chain at a time, or two events would claim
    # the same predecessor.
    head = (
        await session.execute(
            select(Tenant.audit_head_seq, Tenant.audit_head_hash)
            .where(Tenant.id == tenant_id)
            .with_for_update()
        )
    ).one()
    seq, prev_hash = head.audit_head_seq + 1, head.audit_head_hash
    event = AuditEvent(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        seq=seq,
        occurred_at=utcnow(),
        actor=actor,
        action=action,
        target=target,
        request_id=current_request_id(),
        before=before,
        after=after,
        prev_hash=prev_hash,
    )
    event.hash = digest_of(event)
    session.add(event)
    await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(audit_head_seq=seq, audit_head_hash=event.hash)
    )
    await session.flush()
    return event


def digest_of(event: AuditEvent) -> str:
    return event_digest(
        prev_hash=event.prev_hash,
        tenant_id=str(event.tenant_id),
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        request_id=event.request_id,
        before=event.before,
        after=event.after,
    )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str | None = None


async def verify(session: AsyncSession, *, tenant_id: uuid.UUID) -> ChainReport:
    """Walk the chain in order; an edited, deleted or reordered event breaks it."""
    head = (
        await session.execute(
            select(Tenant.audit_head_seq, Tenant.audit_head_hash).where(Tenant.id == tenant_id)
        )
    ).one()
    rows = (
        await session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.seq)
        )
    ).all()
    prev_hash = GENESIS
    for expected_seq, event in enumerate(rows, start=1):
        if event.seq != expected_seq:
            return ChainReport(False, len(rows), expected_seq, "an event is missing")
        if event.prev_hash != prev_hash:
            return ChainReport(
                False, len(rows), event.seq, "the link to the previous event is broken"
            )
        if digest_of(event) != event.hash:
            return ChainReport(False, len(rows), event.seq, "the event was altered")
        prev_hash = event.hash
    if (len(rows), prev_hash) != (head.audit_head_seq, head.audit_head_hash):
        return ChainReport(False, len(rows), len(rows) + 1, "the newest events were removed")
    return ChainReport(True, len(rows))


async def list_events(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    base = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    return await page(session, base, order_by=AuditEvent.seq.desc(), limit=limit, offset=offset)
