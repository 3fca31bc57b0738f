"""Write audit events in the caller's transaction, and verify a tenant's chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.chain import GENESIS, event_digest
from tenantry.audit.models import AuditEvent, AuditHead
from tenantry.db.base import utcnow
from tenantry.db.locks import serialise
from tenantry.db.paging import Keyset, page
from tenantry.tenancy.subjects import current_request_id

CHAIN_LOCK = "audit-chain"

# Newest first, by the chain's own order.
EVENTS = Keyset("audit", (AuditEvent.seq, AuditEvent.id), descending=True)


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
    """Append an event; the session's transaction must have `tenant_id` set (RLS checks it).

    One writer per tenant chain at a time, or two events would claim the same predecessor: the
    chain's advisory lock is held until the transaction ends. It is no row a foreign key points at,
    so taking it after the caller's inserts upgrades nothing; callers still record last, after
    the rows they lock, so that no transaction holds the chain while it waits for a row.
    """
    await serialise(session, CHAIN_LOCK, tenant_id)
    seq, prev_hash = await _head(session, tenant_id)
    event = AuditEvent(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        seq=seq + 1,
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
    await _advance_head(session, tenant_id, event)  # flushes the event first
    return event


async def _head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, str]:
    head = (
        await session.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.tenant_id == tenant_id)
        )
    ).one_or_none()
    return (head.seq, head.hash) if head else (0, GENESIS)


async def _advance_head(session: AsyncSession, tenant_id: uuid.UUID, event: AuditEvent) -> None:
    """The one statement that moves a chain's head (a tenant's first event creates it)."""
    upsert = insert(AuditHead).values(tenant_id=tenant_id, seq=event.seq, hash=event.hash)
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=[AuditHead.tenant_id],
            set_={"seq": upsert.excluded.seq, "hash": upsert.excluded.hash},
        )
    )


async def head(session: AsyncSession, *, tenant_id: uuid.UUID) -> tuple[int, str]:
    """The newest link of the tenant's chain: (seq, hash)."""
    return await _head(session, tenant_id)


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
    """Walk the chain in order; an edited, deleted, reordered or added event breaks it.

    Other transactions may append while this one reads (each statement sees what was committed
    when it began), so the head is read before and after the events: the events must reach the
    first head, and none may lie past the second, whose appends all committed before it was read.
    """
    head_seq, head_hash = await _head(session, tenant_id)
    rows = (
        await session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.seq)
        )
    ).all()
    last_seq, _ = await _head(session, tenant_id)
    prev_hash = GENESIS
    for expected_seq, event in enumerate(rows, start=1):
        if event.seq > last_seq:
            return ChainReport(False, len(rows), event.seq, "an event lies past the chain's head")
        if event.seq != expected_seq:
            return ChainReport(False, len(rows), expected_seq, "an event is missing")
        if event.prev_hash != prev_hash:
            return ChainReport(
                False, len(rows), event.seq, "the link to the previous event is broken"
            )
        if digest_of(event) != event.hash:
            return ChainReport(False, len(rows), event.seq, "the event was altered")
        if event.seq == head_seq and event.hash != head_hash:
            return ChainReport(False, len(rows), event.seq, "the event is not the chain's head")
        prev_hash = event.hash
    if len(rows) < head_seq:
        return ChainReport(False, len(rows), len(rows) + 1, "the newest events were removed")
    return ChainReport(True, len(rows))


async def list_events(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[AuditEvent], str | None]:
    base = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    return await page(session, base, keyset=EVENTS, cursor=cursor, limit=limit)
