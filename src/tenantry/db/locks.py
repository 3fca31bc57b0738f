"""Serialising transactions on a name, without a row that written rows point at.

A row lock on a row that foreign keys reference (a tenant, say) is also wanted, in a weaker form,
by every insert that points at it; a transaction that inserts and then locks that row for update
upgrades a lock it holds, and two of them deadlock. A transaction-level advisory lock is nobody's
foreign key: it is taken before the check it guards, held until commit or rollback, and the next
transaction's statements (READ COMMITTED: a fresh snapshot each) see what the first committed.

Rules the services keep, so that transactions never wait on each other in a circle:
- several rows are locked in one statement, in primary-key order (`ORDER BY id FOR UPDATE`);
- a row is locked before it is changed, not upgraded after an insert pointed at it;
- rows that foreign keys reference are locked `FOR NO KEY UPDATE` unless they are deleted.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

ADVISORY_XACT_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def lock_key(purpose: str, name: uuid.UUID | str) -> int:
    """A stable signed 64-bit key for (purpose, name); a collision only serialises a little more."""
    digest = hashlib.blake2b(f"{purpose}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def serialise(session: AsyncSession, purpose: str, name: uuid.UUID | str) -> None:
    """Wait until no other transaction holds (purpose, name), then hold it until this one ends."""
    await session.execute(ADVISORY_XACT_LOCK, {"key": lock_key(purpose, name)})
