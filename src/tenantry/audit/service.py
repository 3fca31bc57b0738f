"""Write audit events in the caller's transaction, and verify a tenant's chain.

The application appends events and nothing else: its role may not change or delete one, nor move
the chain's head, which a trigger with the owner's rights advances as each event is inserted
(refusing one that does not follow it). Verifying also checks the chain against its newest signed
anchor (`anchors`), so that even a rewrite by someone past those rights is caught.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import anchors
from tenantry.audit.chain import GENESIS, event_digest
from tenantry.audit.models import AuditEvent, AuditHead
from tenantry.db.base import utcnow
from tenantry.db.locks import serialise
from tenantry.db.paging import Keyset, page
from tenantry.tenancy.subjects import current_request_id

CHAIN_LOCK = "audit-chain"
# Purged by the owner role alone once a deletion is done (`anchors.purge_deleted`), never by the
# application's purge of a deleted tenant's rows.
OWNER_PURGED = frozenset({"audit_events", "audit_heads"})

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
    occurred_at: datetime | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """Append an event; the session's transaction must have `tenant_id` set (RLS checks it).
    `occurred_at` and `request_id` default to now and the current request's (a change carried
    into the tenant's cell later keeps those of the request that made it).

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
        occurred_at=occurred_at or utcnow(),
        actor=actor,
        action=action,
        target=target,
        request_id=request_id or current_request_id(),
        before=before,
        after=after,
        prev_hash=prev_hash,
    )
    event.hash = digest_of(event)
    session.add(event)
    await session.flush()  # the chain's trigger checks the link and advances the head
    return event


async def _head(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, str]:
    head = (
        await session.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.tenant_id == tenant_id)
        )
    ).one_or_none()
    return (head.seq, head.hash) if head else (0, GENESIS)


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
    anchor_seq: int | None = None  # the signed anchor the chain was checked against
    anchor_signed_at: datetime | None = None


async def verify(session: AsyncSession, *, tenant_id: uuid.UUID) -> ChainReport:
    """Check the chain, then sign its head as a new anchor when it holds.

    The session's transaction must have `tenant_id` set.
    """
    anchor = await anchors.latest(session, tenant_id=tenant_id)
    report = await _walk(session, tenant_id)
    if report.ok and anchor is not None:
        report = _against_anchor(report, anchor, await _hash_at(session, tenant_id, anchor.seq))
    if anchor is not None:
        report = ChainReport(
            **{**report.__dict__, "anchor_seq": anchor.seq, "anchor_signed_at": anchor.signed_at}
        )
    if report.ok:
        await anchors.sign(session)
    return report


def _against_anchor(report: ChainReport, anchor: anchors.Anchor, hash_there: str | None):
    """The events must still reach the signed head, and its event must be the one signed."""
    when = anchor.signed_at.isoformat(timespec="seconds")
    if not anchor.valid:
        return ChainReport(False, report.events, anchor.seq, f"the anchor of {when} is forged")
    if report.events < anchor.seq:
        return ChainReport(
            False,
            report.events,
            report.events + 1,
            f"events signed in the anchor of {when} were removed",
        )
    if hash_there != anchor.hash:
        return ChainReport(
            False,
            report.events,
            anchor.seq,
            f"the chain differs from the anchor of {when}: it was rewritten",
        )
    return report


async def _hash_at(session: AsyncSession, tenant_id: uuid.UUID, seq: int) -> str | None:
    return await session.scalar(
        select(AuditEvent.hash).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq == seq)
    )


async def _walk(session: AsyncSession, tenant_id: uuid.UUID) -> ChainReport:
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
