"""`/v1/config`: a tenant's effective configuration, its changes, history, diffs and rollback."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from tenantry.api_support import database, forget_cached, policy_of, settings_of
from tenantry.api_types import JsonObject, VersionParam
from tenantry.config import service
from tenantry.config.schemas import EffectiveOut, RollbackIn, VersionOut
from tenantry.db.session import Database
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings

router = APIRouter(prefix="/v1/config", tags=["configuration"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]


async def _effective(db: Database, subject) -> EffectiveOut:
    async with db.tenant(subject.tenant.id) as session:
        eff = await service.effective(
            session, tenant_id=subject.tenant.id, tier=subject.tenant.tier
        )
    return EffectiveOut(
        config=eff.config,
        sources=eff.sources,
        version=eff.tenant_version,
        tier_version=eff.tier_version,
    )


@router.get("", response_model=EffectiveOut, **guard(Permission.CONFIG_READ))
async def show_config(subject: Caller, request: Request) -> EffectiveOut:
    """Served from this process's cache, which every change invalidates in every process."""
    eff = (await policy_of(request, subject.tenant.id)).effective
    return EffectiveOut(
        config=eff.config,
        sources=eff.sources,
        version=eff.tenant_version,
        tier_version=eff.tier_version,
    )


@router.patch("", response_model=EffectiveOut, **guard(Permission.CONFIG_MANAGE))
async def patch_config(
    subject: Caller,
    db: Db,
    settings: Config,
    request: Request,
    patch: Annotated[JsonObject, Body(description="A JSON Merge Patch (RFC 7396).")],
) -> EffectiveOut:
    await new_version(
        request,
        db,
        settings,
        tenant_id=subject.tenant.id,
        tier=subject.tenant.tier,
        author=subject.audit_name,
        patch=patch,
    )
    return await _effective(db, subject)


@router.get("/versions", response_model=Page[VersionOut], **guard(Permission.CONFIG_READ))
async def list_versions(subject: Caller, db: Db, paging: PageParams) -> Page[VersionOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await service.list_versions(
            session, tenant_id=subject.tenant.id, cursor=paging.cursor, limit=paging.limit
        )
        items = [VersionOut.model_validate(r) for r in rows]
    return Page[VersionOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get("/versions/{version}", response_model=VersionOut, **guard(Permission.CONFIG_READ))
async def show_version(version: VersionParam, subject: Caller, db: Db) -> VersionOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        row = await service.get_version(session, tenant_id=subject.tenant.id, version=version)
        return VersionOut.model_validate(row)


@router.get("/diff", **guard(Permission.CONFIG_READ, 404))
async def diff_versions(
    subject: Caller,
    db: Db,
    before: Annotated[VersionParam, Query(alias="from")],
    after: Annotated[VersionParam, Query(alias="to")],
) -> dict[str, Any]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        changes = await service.diff_versions(
            session, tenant_id=subject.tenant.id, before=before, after=after
        )
    return {"from": before, "to": after, "changes": changes}


@router.post("/rollback", response_model=EffectiveOut, **guard(Permission.CONFIG_MANAGE, 404))
async def rollback(
    body: RollbackIn, subject: Caller, db: Db, settings: Config, request: Request
) -> EffectiveOut:
    await new_version(
        request,
        db,
        settings,
        tenant_id=subject.tenant.id,
        tier=subject.tenant.tier,
        author=subject.audit_name,
        to_version=body.version,
    )
    return await _effective(db, subject)


async def new_version(
    request: Request,
    db: Database,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    tier: str,
    author: str,
    patch: dict[str, Any] | None = None,
    to_version: int | None = None,
) -> int:
    """A new version of the tenant's configuration, from a merge `patch` or a rollback
    `to_version`, within the operator's limits; every process's cached copy is dropped after
    the commit. The API's and the console's writes, for a tenant admin or an operator."""
    policy = await policy_of(request, tenant_id)
    write = (
        functools.partial(service.patch_tenant, patch=patch)
        if to_version is None
        else functools.partial(service.rollback_tenant, to_version=to_version)
    )
    async with db.tenant(tenant_id) as session:
        row = await write(
            session,
            tenant_id=tenant_id,
            tier=tier,
            cache_prefix=policy.cache_prefix,
            author=author,
            settings=settings,
            limits=policy.operator_limits,
        )
        version = row.version
    forget_cached(request, policy.cache_prefix)
    return version
