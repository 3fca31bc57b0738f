"""`/v1/admin/tenants`: the operators' control plane over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tenantry.api_support import database, settings_of
from tenantry.api_types import SlugRef
from tenantry.audit import service as audit
from tenantry.audit.schemas import AuditEventOut, ChainOut
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenants import cell_changes, deletion, service
from tenantry.tenants.schemas import Status, TenantCreate, TenantOut, TenantUpdate, Tier

router = APIRouter(prefix="/v1/admin/tenants", tags=["admin: tenants"])
Operator = Caller
Db = Annotated[Database, Depends(database)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TenantOut, **guard(OPERATOR))
async def create_tenant(
    body: TenantCreate,
    operator: Operator,
    db: Db,
    settings: Annotated[Settings, Depends(settings_of)],
    response: Response,
    request: Request,
) -> TenantOut:
    async with db.control() as session:
        tenant = await service.create(
            session, data=body, actor=operator.audit_name, settings=settings
        )
    response.headers["Location"] = str(request.url_for("show_tenant", slug=tenant.slug))
    return TenantOut.of(tenant)


@router.get("", response_model=Page[TenantOut], **guard(OPERATOR))
async def list_tenants(
    operator: Operator,
    db: Db,
    paging: PageParams,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    tier: Tier | None = None,
) -> Page[TenantOut]:
    async with db.control() as session:
        rows, next_cursor = await service.list_tenants(
            session, status=status_, tier=tier, cursor=paging.cursor, limit=paging.limit
        )
    return Page[TenantOut](
        items=[TenantOut.of(t) for t in rows], next_cursor=next_cursor, limit=paging.limit
    )


@router.get("/{slug}", response_model=TenantOut, name="show_tenant", **guard(OPERATOR))
async def show_tenant(slug: SlugRef, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        return TenantOut.of(await service.get(session, slug=slug))


@router.patch("/{slug}", response_model=TenantOut, **guard(OPERATOR))
async def update_tenant(slug: SlugRef, body: TenantUpdate, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.update(session, slug=slug, data=body, actor=operator.audit_name)
    await cell_changes.apply_owed(db, tenant)
    return TenantOut.of(tenant)


@router.post("/{slug}/suspend", response_model=TenantOut, **guard(OPERATOR))
async def suspend_tenant(slug: SlugRef, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.suspend(session, slug=slug, actor=operator.audit_name)
    await cell_changes.apply_owed(db, tenant)
    return TenantOut.of(tenant)


@router.post("/{slug}/resume", response_model=TenantOut, **guard(OPERATOR))
async def resume_tenant(slug: SlugRef, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.resume(session, slug=slug, actor=operator.audit_name)
    await cell_changes.apply_owed(db, tenant)
    return TenantOut.of(tenant)


@router.delete("/{slug}", response_model=TenantOut, **guard(OPERATOR))
async def delete_tenant(slug: SlugRef, operator: Operator, db: Db) -> TenantOut:
    tenant, _ = await service.delete(db, slug=slug, actor=operator.audit_name)
    return TenantOut.of(tenant)


@router.get("/{slug}/audit", response_model=Page[AuditEventOut], **guard(OPERATOR))
async def tenant_audit(
    slug: SlugRef, operator: Operator, db: Db, paging: PageParams
) -> Page[AuditEventOut]:
    async with db.control() as session:
        tenant = await service.get(session, slug=slug)
    async with db.tenant(tenant.id) as session:
        events, next_cursor = await audit.list_events(
            session, tenant_id=tenant.id, cursor=paging.cursor, limit=paging.limit
        )
        items = [AuditEventOut.model_validate(e) for e in events]
    return Page[AuditEventOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get("/{slug}/audit/verify", response_model=ChainOut, **guard(OPERATOR))
async def verify_tenant_audit(slug: SlugRef, operator: Operator, db: Db) -> ChainOut:
    async with db.control() as session:
        tenant = await service.get(session, slug=slug)
        receipt = await deletion.receipt_of(session, tenant_id=tenant.id)
    if receipt is not None:
        return ChainOut.deleted(receipt)
    async with db.tenant(tenant.id) as session:
        report = await audit.verify(session, tenant_id=tenant.id)
    return ChainOut.model_validate(report, from_attributes=True)
