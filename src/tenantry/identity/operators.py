"""Platform operators: accounts, their access tokens, and the bootstrap token.

The bootstrap token (generated on first start, or TENANTRY_BOOTSTRAP_TOKEN) authenticates as the
`bootstrap` operator, whose only power is creating operators: the way in for the first one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.errors import Conflict
from tenantry.identity import access_tokens
from tenantry.identity.models import Operator, OperatorToken
from tenantry.identity.passwords import check_policy, hash_password, verify_password
from tenantry.identity.schemas import OperatorCreate, TokenOut
from tenantry.identity.tokens import OPERATOR_PREFIX, digest, new_secret
from tenantry.settings import Settings
from tenantry.tenancy.subjects import Subject

BOOTSTRAP = "bootstrap"
OPERATORS = Keyset("operators", (Operator.email, Operator.id))


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
