"""Login, refresh with rotation and reuse detection, logout.

A login opens a session: a family of refresh tokens whose id travels in every access token as `sid`.
Each refresh spends its token and issues the next one in the family. A spent token presented again
within `refresh_grace_seconds` of being spent, before any of its successors was used, is the same
client retrying (OAuth 2.0 Security BCP §4.14.2 allows this): it gets another pair in the same
session. Presented later, or after a successor was used, it means someone holds a copy, so the
whole family is revoked, and with it every access token that names it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.locks import serialise
from tenantry.db.session import set_tenant
from tenantry.identity import access_tokens
from tenantry.identity.models import RefreshToken, User
from tenantry.identity.passwords import hash_password, needs_rehash, verify_password
from tenantry.identity.schemas import TokenOut
from tenantry.identity.tokens import REFRESH_PREFIX, digest, new_tenant_secret, parse_tenant_secret
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

Failure = Literal["invalid", "user-disabled", "tenant-suspended", "reused"]
SESSION_LOCK = "refresh-session"


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
    by_hash = (RefreshToken.tenant_id == tenant.id, RefreshToken.token_hash == digest(token))
    family_id = await session.scalar(select(RefreshToken.family_id).where(*by_hash))
    if family_id is None:
        return Outcome(failure="invalid")
    # One refresh of a session at a time: replays, siblings and successors are judged in order,
    # each seeing what the previous one committed.
    await serialise(session, SESSION_LOCK, family_id)
    row = await session.scalar(select(RefreshToken).where(*by_hash))
    now = utcnow()
    if row.expires_at <= now or row.revoked_at is not None:
        return Outcome(failure="invalid")
    if await _replayed_too_late(session, row, now, settings.refresh_grace_seconds):
        await _revoke_family(session, tenant.id, row.family_id)
        await audit.record(
            session,
            tenant_id=tenant.id,
            actor="anonymous",
            action="auth.refresh_reused",
            target=f"session:{row.family_id}",
        )
        return Outcome(failure="reused")
    user = await session.scalar(
        select(User).where(User.tenant_id == tenant.id, User.id == row.user_id)
    )
    if tenant.status == "suspended":
        return Outcome(failure="tenant-suspended")
    if user is None or user.status != "active":
        return Outcome(failure="user-disabled")
    if row.used_at is None:
        row.used_at = now
    tokens = await _issue(
        session,
        tenant=tenant,
        user=user,
        family_id=row.family_id,
        parent_id=row.id,
        settings=settings,
        key=key,
    )
    return Outcome(tokens=tokens)


async def _replayed_too_late(
    session: AsyncSession, row: RefreshToken, now: datetime, grace_seconds: float
) -> bool:
    """Whether presenting `row` means someone else holds a copy of the session.

    A spent token presented again within the grace period, while none of its successors has been
    used, is the same client retrying (a lost answer, two tabs): it gets another pair in the same
    session. Later, or once a successor was used, it is a copy. So is an unspent token whose
    sibling (another answer to the same replayed parent) has been used: the client went on with
    the other one.
    """
    if row.used_at is None:
        if row.parent_id is None:
            return False
        return await _any_used(
            session, row, RefreshToken.parent_id == row.parent_id, RefreshToken.id != row.id
        )
    if (now - row.used_at).total_seconds() > grace_seconds:
        return True
    return await _any_used(session, row, RefreshToken.parent_id == row.id)


async def _any_used(session: AsyncSession, row: RefreshToken, *where) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    RefreshToken.tenant_id == row.tenant_id,
                    RefreshToken.used_at.is_not(None),
                    *where,
                )
            )
        )
    )


async def logout(
    session: AsyncSession, *, tenant_id: uuid.UUID, session_id: uuid.UUID, actor: str
) -> None:
    await _revoke_family(session, tenant_id, session_id)
    await audit.record(
        session, tenant_id=tenant_id, actor=actor, action="logout", target=f"session:{session_id}"
    )


async def _revoke_family(session: AsyncSession, tenant_id: uuid.UUID, family_id: uuid.UUID) -> None:
    await serialise(session, SESSION_LOCK, family_id)  # never crosswise with a refresh
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
    parent_id: uuid.UUID | None = None,
) -> TokenOut:
    raw, _ = new_tenant_secret(REFRESH_PREFIX, tenant.id)
    session.add(
        RefreshToken(
            tenant_id=tenant.id,
            id=uuid.uuid4(),
            family_id=family_id,
            parent_id=parent_id,
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
