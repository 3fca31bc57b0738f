"""Read replicas with read-your-writes: where a caller's reads must have got to.

A read-only transaction (`Database.tenant(..., readonly=True)`) may run on a streaming standby,
but a caller who has just written must see the write. Each write transaction therefore notes the
primary's WAL position after its commit (`pg_current_wal_lsn()`, in the same round trip as the
COMMIT), and a read goes to the standby only once it has replayed past the caller's highest
position (`pg_last_wal_replay_lsn()`, checked in the same round trip as BEGIN); otherwise to the
primary.

The position lives in a `ReadPosition` for the duration of one request (a context variable); the
HTTP layer carries it from one request of a session to the next (`tenantry.read_your_writes`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

# The standby's snapshot is taken per statement (READ COMMITTED): every statement after this
# check sees at least what had been replayed when it ran.
REPLAYED_PAST = "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)"
# Whether this transaction wrote anything, before COMMIT; where the WAL is, after it.
WROTE = "SELECT pg_current_xact_id_if_assigned() IS NOT NULL"
WAL_POSITION = "SELECT pg_current_wal_lsn()::text"


@dataclass
class ReadPosition:
    """The WAL position this caller's reads must see: the session's last write, raised by each
    write of the current request."""

    lsn: int = 0
    wrote: bool = False

    def advance(self, lsn: int) -> None:
        self.lsn = max(self.lsn, lsn)
        self.wrote = True


_position: ContextVar[ReadPosition | None] = ContextVar("tenantry_read_position", default=None)


def current_position() -> ReadPosition | None:
    return _position.get()


@contextmanager
def reading_after(lsn: int = 0) -> Iterator[ReadPosition]:
    """Reads in this block see at least `lsn`, and every write in it."""
    position = ReadPosition(lsn)
    token = _position.set(position)
    try:
        yield position
    finally:
        _position.reset(token)


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> an integer that orders as the WAL does."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def sign_position(lsn: int, key: bytes) -> str:
    """A token that carries `lsn` to the next request; signed, so a client cannot send every
    read of its session to the primary by naming a position from the future."""
    body = format_lsn(lsn)
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def verify_position(token: str, key: bytes) -> int:
    """The position a token carries; 0 (no constraint) when it is absent, malformed or forged."""
    body, _, mac = token.partition(".")
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]
    if not mac or not hmac.compare_digest(mac, expected):
        return 0
    try:
        return parse_lsn(body)
    except ValueError:
        return 0
