"""Claiming, completing and forgetting Idempotency-Key records.

A claim is its own short transaction, committed before the request runs, so that a concurrent
request with the same key sees it (and gets 409) instead of running the work a second time. A
record left `in_flight` by a process that died is taken over once its lease ends.
"""

from __future__ import annotations

import json
import uuid
from base64 import b64decode, b64encode
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from tenantry.db.session import Database
from tenantry.idempotency.models import IdempotencyKey, OperatorIdempotencyKey
from tenantry.keys.service import derived_key, seal, unseal

KEEP = timedelta(hours=24)
LEASE = timedelta(seconds=60)  # how long a claim blocks a retry if its process dies mid-request


@dataclass(frozen=True)
class Owner:
    """Whose key space: a tenant (all its users and keys share it) or one operator."""

    tenant_id: uuid.UUID | None = None
    operator: str | None = None


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    outcome: str  # new, replay, mismatch, in_flight
    stored: Stored | None = None


class IdempotencyStore:
    def __init__(self, db: Database, kek: bytes) -> None:
        self.db = db
        self.key = derived_key(kek, "idempotency-responses")

    def _table(self, owner: Owner):
        return IdempotencyKey if owner.tenant_id is not None else OperatorIdempotencyKey

    def _where(self, owner: Owner, key: str) -> list:
        table = self._table(owner)
        scope = (
            table.tenant_id == owner.tenant_id
            if owner.tenant_id is not None
            else table.operator == owner.operator
        )
        return [scope, table.key == key]

    def _session(self, owner: Owner):
        return self.db.tenant(owner.tenant_id) if owner.tenant_id else self.db.control()

    async def claim(self, owner: Owner, key: str, fingerprint: str) -> Claim:
        table = self._table(owner)
        scope = (
            {"tenant_id": owner.tenant_id}
            if owner.tenant_id is not None
            else {"operator": owner.operator}
        )
        statement = insert(table).values(
            **scope,
            key=key,
            fingerprint=fingerprint,
            status="in_flight",
            locked_until=func.now() + LEASE,
            created_at=func.now(),
            expires_at=func.now() + KEEP,
        )
        # Taken over: an expired record, or the same request whose first try died mid-way.
        statement = statement.on_conflict_do_update(
            index_elements=[*scope, "key"],
            set_={
                "fingerprint": statement.excluded.fingerprint,
                "status": "in_flight",
                "locked_until": statement.excluded.locked_until,
                "response": None,
                "created_at": statement.excluded.created_at,
                "expires_at": statement.excluded.expires_at,
            },
            where=(table.expires_at < func.now())
            | (
                (table.status == "in_flight")
                & (table.locked_until < func.now())
                & (table.fingerprint == statement.excluded.fingerprint)
            ),
        ).returning(table.key)
        async with self._session(owner) as session:
            if await session.scalar(statement) is not None:
                return Claim("new")
            row = (
                await session.execute(
                    select(table.fingerprint, table.status, table.response).where(
                        *self._where(owner, key)
                    )
                )
            ).one()
        if row.fingerprint != fingerprint:
            return Claim("mismatch")
        if row.status != "done":
            return Claim("in_flight")
        return Claim("replay", self._open(owner, key, row.response))

    async def complete(self, owner: Owner, key: str, fingerprint: str, answer: Stored) -> None:
        table = self._table(owner)
        async with self._session(owner) as session:
            await session.execute(
                update(table)
                .where(*self._where(owner, key), table.fingerprint == fingerprint)
                .values(status="done", response=self._seal(owner, key, answer))
            )

    async def forget(self, owner: Owner, key: str, fingerprint: str) -> None:
        """The request failed without an answer worth keeping: a retry may run it again."""
        table = self._table(owner)
        async with self._session(owner) as session:
            await session.execute(
                delete(table).where(
                    *self._where(owner, key),
                    table.fingerprint == fingerprint,
                    table.status == "in_flight",
                )
            )

    def _aad(self, owner: Owner, key: str) -> bytes:
        return f"{owner.tenant_id or owner.operator}\0{key}".encode()

    def _seal(self, owner: Owner, key: str, answer: Stored) -> bytes:
        plain = json.dumps(
            {
                "status": answer.status,
                "headers": answer.headers,
                "body": b64encode(answer.body).decode(),
            }
        ).encode()
        return seal(self.key, plain, aad=self._aad(owner, key))

    def _open(self, owner: Owner, key: str, sealed: bytes) -> Stored:
        plain = json.loads(unseal(self.key, sealed, aad=self._aad(owner, key)))
        return Stored(
            plain["status"], [tuple(h) for h in plain["headers"]], b64decode(plain["body"])
        )
