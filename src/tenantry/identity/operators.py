"""Platform operators: accounts, their access tokens, and the bootstrap token's subject.

The bootstrap token (`bootstrap.py`) authenticates as the `bootstrap` operator, whose only power is
creating operators: the way in for the first one, closed once that one exists.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.errors import Conflict
from tenantry.identity import access_tokens, bootstrap
from tenantry.identity.models import Operator, OperatorToken
from tenantry.identity.passwords import check_policy, hash_password, verify_password
from tenantry.identity.schemas import OperatorCreate, TokenOut
from tenantry.identity.tokens import OPERATOR_PREFIX, digest, new_secret
from tenantry.settings import Settings
from tenantry.tenancy.subjects import Subject

BOOTSTRAP = bootstrap.NAME
OPERATORS = Keyset("operators", (Operator.email, Operator.id))
SESSION_TOKEN_NAME = "session:"  # then a random id: one row per signed-in browser


async def create(session: AsyncSession, *, data: OperatorCreate) -> Operator:
    check_policy(data.password)
    email = data.email.lower()
    if await session.scalar(select(Operator.id).where(Operator.email == email)):
        raise Conflict(f"An operator with email {email} already exists.", code="operator-exists")
    operator = Operator(
        id=uuid.uuid4(),
        email=email,
        name=data.name,
        password_hash=await hash_password(data.password),
    )
    session.add(operator)
    await session.flush()
    await bootstrap.close(session)  # an operator exists: the bootstrap token is spent
    return operator


async def list_operators(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Operator], str | None]:
    return await page(session, select(Operator), keyset=OPERATORS, cursor=cursor, limit=limit)


async def login(
    session: AsyncSession, *, email: str, password: str, settings: Settings, key: str
) -> TokenOut | None:
    operator = await session.scalar(select(Operator).where(Operator.email == email.lower()))
    if not await verify_password(operator.password_hash if operator else None, password):
        return None
    if operator.status != "active":
        return None
    operator.last_login_at = utcnow()
    token = access_tokens.issue(
        key, kind="operator", subject_id=operator.id, minutes=settings.access_token_minutes
    )
    return TokenOut(access_token=token, expires_in=settings.access_token_minutes * 60)


async def authenticate_token(session: AsyncSession, *, token: str) -> Subject | None:
    row = await session.scalar(
        select(OperatorToken).where(
            OperatorToken.token_hash == digest(token), OperatorToken.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    now = utcnow()
    if not bootstrap.usable(row, now):
        return None  # past its expiry (a bootstrap token's 24 hours, a session's end)
    if row.operator_id is None and await bootstrap.operators_exist(session):
        return None  # the first operator exists
    # Written at most once a minute, so authenticating is not a write on every request.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
    if row.operator_id is None:
        return Subject(kind="operator", id=None, name=BOOTSTRAP, role=BOOTSTRAP)
    operator = await session.get(Operator, row.operator_id)
    if operator is None or operator.status != "active":
        return None
    return Subject(kind="operator", id=operator.id, name=operator.email, role="operator")


async def authenticate_jwt(session: AsyncSession, *, operator_id: uuid.UUID) -> Subject | None:
    operator = await session.get(Operator, operator_id)
    if operator is None or operator.status != "active":
        return None
    return Subject(kind="operator", id=operator.id, name=operator.email, role="operator")


async def open_session(session: AsyncSession, *, operator_id: uuid.UUID, hours: float) -> str:
    """An opaque, revocable token for one signed-in browser, valid `hours`.

    Operators have no refresh tokens (those are tenant-owned rows, under a tenant's RLS): a
    session that outlives the access token is an operator token of its own instead, read fresh on
    every request like any other (a disabled operator is refused at once) and revoked by logout.
    """
    token = new_secret(OPERATOR_PREFIX)
    session.add(
        OperatorToken(
            name=f"{SESSION_TOKEN_NAME}{uuid.uuid4()}",
            token_hash=digest(token),
            operator_id=operator_id,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    await session.flush()
    return token


async def close_session(session: AsyncSession, *, token: str) -> bool:
    """Revoke a session token from `open_session` (never another kind); whether one was open."""
    result = await session.execute(
        update(OperatorToken)
        .where(
            OperatorToken.token_hash == digest(token),
            OperatorToken.name.startswith(SESSION_TOKEN_NAME),
            OperatorToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return result.rowcount > 0
