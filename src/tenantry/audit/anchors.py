"""Anchors: a tenant's chain head (tenant, seq, hash, time) signed outside the chain's tables.

The signing key lives in a table the application role cannot read; PostgreSQL functions that run
with the owner role's rights sign a head (`audit_anchor()`, HMAC-SHA256) and check the newest
anchor's signature (`audit_latest_anchor()`), so the API and the worker get anchors made and
checked without ever holding the key. Each anchor is kept in `audit_anchors` (which the
application can read but not change) and written to the log, a copy outside the database.

Heads are anchored on every verify, by the deletion of a tenant (its final head), and
periodically for every tenant whose head moved (`AnchorMovedHeads`, run by the relay). A verify
then catches a truncation or a rewritten tail up to the newest anchor, even one made by someone
holding the application's credentials or more; what was appended since that anchor is guarded
by the head alone.

The key has versions (`audit_signing_keys.id`, named by every anchor as `key_id`): rotating adds
one, which signs every anchor from then on, and each older anchor still verifies under the
version it names, so no version is ever removed.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
import structlog
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.session import Database
from tenantry.db.urls import libpq_dsn
from tenantry.settings import OWNER_ROLE

log = structlog.get_logger("tenantry.audit")

SIGN = text("SELECT tenant, seq, hash, signed_at, key_id, signature FROM audit_anchor()")
SIGN_MOVED = text(
    "SELECT tenant, seq, hash, signed_at, key_id, signature FROM audit_anchor_moved()"
)
# How often the relay anchors the heads that moved: a rewrite of older events is caught from then.
ANCHOR_EVERY_SECONDS = 300.0

LATEST = text("SELECT seq, hash, signed_at, valid FROM audit_latest_anchor(:tenant)")


@dataclass(frozen=True)
class Anchor:
    tenant: uuid.UUID
    seq: int
    hash: str
    signed_at: datetime
    key_id: int
    signature: str


@dataclass(frozen=True)
class LatestAnchor:
    seq: int
    hash: str
    signed_at: datetime
    valid: bool  # whether its signature holds under the key it names


async def sign(session: AsyncSession) -> Anchor | None:
    """Sign the head of the session's tenant (None while its chain is empty), and log it."""
    row = (await session.execute(SIGN)).one_or_none()
    return _logged(Anchor(*row)) if row else None


async def sign_moved(session: AsyncSession) -> list[Anchor]:
    """Anchor every tenant whose head moved past its newest anchor (a control transaction)."""
    return [_logged(Anchor(*row)) for row in (await session.execute(SIGN_MOVED)).all()]


async def latest(session: AsyncSession, *, tenant_id: uuid.UUID) -> LatestAnchor | None:
    row = (await session.execute(LATEST, {"tenant": tenant_id})).one_or_none()
    return LatestAnchor(*row) if row else None


def _logged(anchor: Anchor) -> Anchor:
    log.info(
        "audit anchor",
        anchored_tenant=str(anchor.tenant),
        seq=anchor.seq,
        hash=anchor.hash,
        signed_at=anchor.signed_at.isoformat(),
        key_id=anchor.key_id,
        signature=anchor.signature,
    )
    return anchor


@dataclass(frozen=True)
class KeyVersion:
    key_id: int
    created_at: datetime
    previous_key_id: int | None


@contextmanager
def _as_owner(admin_url: str) -> Iterator[psycopg.Connection]:
    """A transaction as the owner role, the only one that may touch keys and purge events."""
    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        with conn.transaction():
            yield conn


def purge_deleted(admin_url: str, *, tenant_id: uuid.UUID) -> int:
    """As the owner role: remove a deleted tenant's audit log (its deletion anchored the final
    head, which the receipt and the anchors keep). How many events were removed."""
    with _as_owner(admin_url) as conn:
        return int(conn.execute("SELECT audit_purge(%s)", [tenant_id]).fetchone()[0])


def rotate_key(admin_url: str) -> KeyVersion:
    """As the owner role: a new version of the signing key, used by every anchor made once this
    commits. The key itself goes from here to the table and nowhere else (not to the log)."""
    with _as_owner(admin_url) as conn:
        # One rotation at a time, so each reports the version it replaced.
        conn.execute("LOCK TABLE audit_signing_keys IN SHARE ROW EXCLUSIVE MODE")
        previous = conn.execute("SELECT max(id) FROM audit_signing_keys").fetchone()[0]
        key_id, created_at = conn.execute(
            "INSERT INTO audit_signing_keys (key) VALUES (%s) RETURNING id, created_at",
            [secrets.token_bytes(32)],
        ).fetchone()
    log.info("audit signing key rotated", key_id=key_id, previous_key_id=previous)
    return KeyVersion(key_id, created_at, previous)


class AnchorMovedHeads:
    """A relay chore: every `every_seconds`, anchor the heads that moved since their last anchor."""

    def __init__(self, db: Database, *, every_seconds: float) -> None:
        self.db = db
        self.every_seconds = every_seconds
        self._last: float | None = None

    async def __call__(self) -> int:
        if self._last is not None and time.monotonic() - self._last < self.every_seconds:
            return 0
        self._last = time.monotonic()
        async with self.db.control() as session:
            return len(await sign_moved(session))
