"""`/v1/admin/tiers`: the tier templates operators edit, inherited by every tenant of the tier."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Request

from tenantry.api_support import database, forget_cached, settings_of
from tenantry.api_types import JsonObject
from tenantry.config import service
from tenantry.config.schemas import RollbackIn, TierTemplateOut, VersionOut
from tenantry.db.paging import page_of
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenants.tiers import TIERS

router = APIRouter(prefix="/v1/admin/tiers", tags=["admin: tiers"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
TierName = Literal["free", "standard", "enterprise"]


def _out(tier: str, version: int, document: dict) -> TierTemplateOut:
    template = TIERS[tier]
    return TierTemplateOut(
        tier=tier,
        version=version,
        document=document,
        limits=template.limits.model_dump(),
        fairness_weight=template.fairness_weight,
        db_connection_share=template.db_connection_share,
        shed_above=template.shed_above,
    )


@router.get("", response_model=Page[TierTemplateOut], **guard(OPERATOR))
async def list_tiers(db: Db, paging: PageParams) -> Page[TierTemplateOut]:
    """The three tiers, cheapest first: a fixed list, paged like every other."""
    names, next_cursor = page_of(
        list(TIERS), name="tiers", key=str, cursor=paging.cursor, limit=paging.limit
    )
    async with db.control() as session:
        items = [_out(t, *(await service.tier_document(session, t))) for t in names]
    return Page[TierTemplateOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get("/{tier}/config", response_model=TierTemplateOut, **guard(OPERATOR))
async def show_tier(tier: TierName, db: Db) -> TierTemplateOut:
    async with db.control() as session:
        return _out(tier, *(await service.tier_document(session, tier)))


@router.patch("/{tier}/config", response_model=TierTemplateOut, **guard(OPERATOR))
async def patch_tier(
    tier: TierName,
    operator: Caller,
    db: Db,
    settings: Config,
    request: Request,
    patch: Annotated[JsonObject, Body(description="A JSON Merge Patch (RFC 7396).")],
) -> TierTemplateOut:
    async with db.control() as session:
        row = await service.patch_tier(
            session, tier=tier, patch=patch, author=operator.audit_name, settings=settings
        )
    forget_cached(request, service.EVERYONE)
    return _out(tier, row.version, row.document)


@router.get("/{tier}/config/versions", response_model=Page[VersionOut], **guard(OPERATOR))
async def tier_versions(tier: TierName, db: Db, paging: PageParams) -> Page[VersionOut]:
    async with db.control() as session:
        rows, next_cursor = await service.tier_versions(
            session, tier=tier, cursor=paging.cursor, limit=paging.limit
        )
        items = [VersionOut.model_validate(r) for r in rows]
    return Page[VersionOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.post("/{tier}/config/rollback", response_model=TierTemplateOut, **guard(OPERATOR))
async def rollback_tier(
    tier: TierName,
    body: RollbackIn,
    operator: Caller,
    db: Db,
    settings: Config,
    request: Request,
) -> TierTemplateOut:
    async with db.control() as session:
        row = await service.rollback_tier(
            session,
            tier=tier,
            to_version=body.version,
            author=operator.audit_name,
            settings=settings,
        )
    forget_cached(request, service.EVERYONE)
    return _out(tier, row.version, row.document)
