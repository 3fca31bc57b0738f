"""Tenant API keys: shown once, stored as a digest with a lookup id, scoped, expiring, revocable.

A key is checked on every request by `authn` (one statement, no ORM), with the user who created
it: the key does at most what its scopes say and that user's role allows now, and nothing once
that user is disabled or removed (an admin then makes a new key; re-enabling the user revives it).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.errors import NotFound, ValidationFailed
from tenantry.identity.models import ApiKey
from tenantry.identity.schemas import ApiKeyCreate
from tenantry.identity.tokens import API_KEY_PREFIX, digest, new_tenant_secret
from tenantry.limits.quotas import reserve

API_KEYS = Keyset("api_keys", (ApiKey.created_at, ApiKey.id), descending=True)


def display_prefix(key: ApiKey) -> str:
    return f"{API_KEY_PREFIX}{key.tenant_id.hex}_{key.lookup}_…"


def state_of(key: ApiKey) -> str:
    """What the key can do now, as `authn` decides it (the key's creator must be loaded)."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "expired"
    if key.creator is None:
        return "creator_removed"
    return "active" if key.creator.status == "active" else "creator_disabled"


async def create(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    data: ApiKeyCreate,
    actor: str,
    creator_id: uuid.UUID,
    quota: int | None = None,
) -> tuple[ApiKey, str]:
    """A key for `creator_id`: the user who asked, or the creator of the key that asked."""
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise ValidationFailed(
            "expires_at must be in the future.",
            errors=[{"field": "body.expires_at", "message": "must be in the future"}],
        )
    if quota is not None:
        await reserve(
            session,
            tenant_id=tenant_id,
            quota="api_keys",
            limit=quota,
            used=select(func.count()).where(
                ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
            ),
        )
    secret, lookup = new_tenant_secret(API_KEY_PREFIX, tenant_id)
    key = ApiKey(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        name=data.name,
        lookup=lookup,
        key_hash=digest(secret),
        scopes=sorted(set(data.scopes)),
        created_by=actor,
        created_by_user_id=creator_id,
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key, ["creator"])
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="api_key.created",
        target=f"api_key:{key.id}",
        after={"name": key.name, "scopes": key.scopes, "creator": str(creator_id)},
    )
    return key, secret


async def list_keys(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[ApiKey], str | None]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    return await page(session, query, keyset=API_KEYS, cursor=cursor, limit=limit)


async def get(
    session: AsyncSession, *, tenant_id: uuid.UUID, key_id: uuid.UUID, for_update: bool = False
) -> ApiKey:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
    key = await session.scalar(query.with_for_update(of=ApiKey) if for_update else query)
    if key is None:
        raise NotFound("No such API key.")
    return key


async def revoke(
    session: AsyncSession, *, tenant_id: uuid.UUID, key_id: uuid.UUID, actor: str
) -> ApiKey:
    # Locked first: of two revocations at once, the second sees the first's and audits nothing.
    key = await get(session, tenant_id=tenant_id, key_id=key_id, for_update=True)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="api_key.revoked",
            target=f"api_key:{key.id}",
            before={"name": key.name, "scopes": key.scopes},
        )
    return key
