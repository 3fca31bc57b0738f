"""Operator credentials: the bootstrap token, stored hashed, that opens `/v1/admin/*`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.identity.models import OperatorToken
from tenantry.identity.tokens import OPERATOR_PREFIX, digest, new_secret
from tenantry.tenancy.subjects import Subject

BOOTSTRAP = "bootstrap"


async def ensure_bootstrap_token(
    session: AsyncSession, *, given: str | None
) -> tuple[bool, str | None]:
    """Store the bootstrap token's digest. Returns (first start, plaintext if just generated).

    A token given by setting replaces the stored one, so automation can rotate it.
    """
    row = await session.scalar(select(OperatorToken).where(OperatorToken.name == BOOTSTRAP))
    first = row is None
    if given:
        if row is None:
            session.add(OperatorToken(name=BOOTSTRAP, token_hash=digest(given)))
        elif row.token_hash != digest(given):
            row.token_hash, row.revoked_at = digest(given), None
        return first, None
    if row is not None:
        return first, None
    token = new_secret(OPERATOR_PREFIX)
    session.add(OperatorToken(name=BOOTSTRAP, token_hash=digest(token)))
    return first, token


async def authenticate(session: AsyncSession, *, token: str) -> Subject | None:
    row = await session.scalar(
        select(OperatorToken).where(
            OperatorToken.token_hash == digest(token), OperatorToken.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    now = utcnow()
    # Written at most once a minute, so authenticating is not a write on every request.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    return Subject(kind="operator", id=row.id, name=row.name)
