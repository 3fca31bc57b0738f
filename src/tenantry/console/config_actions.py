"""Changing and rolling back one tenant's configuration, as `/v1/config` does, for either
kind of console caller (a tenant admin for their own tenant, an operator for any)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request

from tenantry.api_support import forget_cached, policy_of
from tenantry.config import service
from tenantry.db.session import Database
from tenantry.settings import Settings


async def change(
    request: Request,
    db: Database,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    tier: str,
    patch: dict[str, Any],
    author: str,
) -> int:
    """The new version's number."""
    policy = await policy_of(request, tenant_id)
    async with db.tenant(tenant_id) as session:
        row = await service.patch_tenant(
            session,
            tenant_id=tenant_id,
            tier=tier,
            cache_prefix=policy.cache_prefix,
            patch=patch,
            author=author,
            settings=settings,
            limits=policy.operator_limits,
        )
        version = row.version
    forget_cached(request, policy.cache_prefix)
    return version


async def roll_back(
    request: Request,
    db: Database,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    tier: str,
    to_version: int,
    author: str,
) -> int:
    policy = await policy_of(request, tenant_id)
    async with db.tenant(tenant_id) as session:
        row = await service.rollback_tenant(
            session,
            tenant_id=tenant_id,
            tier=tier,
            cache_prefix=policy.cache_prefix,
            to_version=to_version,
            author=author,
            settings=settings,
            limits=policy.operator_limits,
        )
        version = row.version
    forget_cached(request, policy.cache_prefix)
    return version


async def diff(db: Database, *, tenant_id: uuid.UUID, before: int, after: int) -> dict:
    async with db.tenant(tenant_id) as session:
        return await service.diff_versions(session, tenant_id=tenant_id, before=before, after=after)
