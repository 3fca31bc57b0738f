"""Login, refresh with rotation and reuse detection, logout.

A login opens a session: a family of refresh tokens whose id travels in every access token as `sid`.
Each refresh spends its token and issues the next one in the family; a spent token presented again
means it was stolen, so the whole family is revoked, and with it every access token that names it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.session import set_tenant
from tenantry.identity import access_tokens
from tenantry.identity.models import RefreshToken, User
from tenantry.identity.passwords import hash_password, needs_rehash, verify_password
from tenantry.identity.schemas import TokenOut
from tenantry.identity.tokens import REFRESH_PREFIX, digest, new_tenant_secret, parse_tenant_secret
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

Failure = Literal["invalid", "user-disabled", "tenant-suspended", "reused"]


@dataclass(frozen=True)
class Outcome:
    tokens: TokenOut | None = None
    failure: Failure | None = None


async def login(
    session: AsyncSession,
    *,
    tenant: Tenant | None,
    email: str,
    password: str,
    settings: Settings,
    key: str,
) -> Outcome:
    """Check a password login. Unknown tenant, unknown user and wrong password look the same."""
    email = email.lower()
    if tenant is None or tenant.status in ("deleting", "deleted"):
        await verify_password(None, password)  # spend the same time as a real check
        return Outcome(failure="invalid")
    await set_tenant(session, tenant.id)
    user = await session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.email == email)
    )
    if not await verify_password(user.password_hash if user else None, password):
        await audit.record(
            session,
            tenant_id=tenant.id,
            actor="anonymous",
            action="login.failed",
            target=f"user:{email}",
        )
        return Outcome(failure="invalid")
    if tenant.status == "suspended":
        return Outcome(failure="tenant-suspended")
    if user.status != "active":
        return Outcome(failure="user-disabled")
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return Outcome(
        tokens=await open_session(
            session, tenant=tenant, user=user, settings=settings, key=key, action="login.succeeded"
        )
    )


async def open_session(
    session: AsyncSession, *, tenant: Tenant, user: User, settings: Settings, key: str, action: str
) -> TokenOut:
    user.last_login_at = utcnow()
    tokens = await _issue(
        session, tenant=tenant, user=user, family_id=uuid.uuid4(), settings=settings, key=key
    )
    await audit.record(
        session,
        tenant_id=tenant.id,
        actor=f"user:{user.email}",
        action=action,
        target=f"user:{user.email}",
    )
    return tokens


async def refresh(session: AsyncSession, *, token: str, settings: Settings, key: str) -> Outcome:
    parsed = parse_tenant_secret(REFRESH_PREFIX, token)
    if parsed is None:
        return Outcome(failure="invalid")
    tenant = await session.get(Tenant, parsed.tenant_id)
    if tenant is None or tenant.status in ("deleting", "deleted"):
        return Outcome(failure="invalid")
    await set_tenant(session, tenant.id)
    row = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.tenant_id == tenant.id, RefreshToken.token_hash == digest(token))
        .with_for_update()
    )
    if row is None or row.expires_at <= utcnow():
        return Outcome(failure="invalid")
    if row.used_at is not None:  # spent already: someone holds a copy
        await _revoke_family(session, tenant.id, row.family_id)
        await audit.record(
            session,
            tenant_id=tenant.id,
            actor="anonymous",
            action="auth.refresh_reused",
            target=f"session:{row.family_id}",
        )
        return Outcome(failure="reused")
    if row.revoked_at is not None:
        return Outcome(failure="invalid")
    user = await session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.id == row.user_id)
    )
    if tenant.status == "suspended":
        return Outcome(failure="tenant-suspended")
    if user is None or user.status != "active":
        return Outcome(failure="user-disabled")
    row.used_at = utcnow()
    tokens = await _issue(
        session, tenant=tenant, user=user, family_id=row.family_id, settings=settings, key=key
    )
    return Outcome(tokens=tokens)


async def logout(
    session: AsyncSession, *, tenant_id: uuid.UUID, session_id: uuid.UUID, actor: str
) -> None:
    await _revoke_family(session, tenant_id, session_id)
    await audit.record(
        session, tenant_id=tenant_id, actor=actor, action="logout", target=f"session:{session_id}"
    )


async def _revoke_family(session: AsyncSession, tenant_id: uuid.UUID, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.tenant_id == tenant_id, RefreshToken.family_id == family_id)
        .values(revoked_at=utcnow())
    )


async def _issue(
    session: AsyncSession,
    *,
    tenant: Tenant,
    user: User,
    family_id: uuid.UUID,
    settings: Settings,
    key: str,
) -> TokenOut:
    raw, _ = new_tenant_secret(REFRESH_PREFIX, tenant.id)
    session.add(
        RefreshToken(
            tenant_id=tenant.id,
            id=uuid.uuid4(),
            family_id=family_id,
            user_id=user.id,
            token_hash=digest(raw),
            expires_at=utcnow() + timedelta(days=settings.refresh_token_days),
        )
    )
    access = access_tokens.issue(
        key,
        kind="user",
        subject_id=user.id,
        tenant_id=tenant.id,
        role=user.role,
        session_id=family_id,
        minutes=settings.access_token_minutes,
    )
    await session.flush()
    return TokenOut(
        access_token=access, expires_in=settings.access_token_minutes * 60, refresh_token=raw
    )
