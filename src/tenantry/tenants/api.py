"""`/v1/admin/tenants`: the operators' control plane over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tenantry.api_support import database, settings_of
from tenantry.audit import service as audit
from tenantry.audit.schemas import AuditPage, ChainOut
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.settings import Settings
from tenantry.tenants import deletion, service
from tenantry.tenants.schemas import Status, TenantCreate, TenantOut, TenantPage, TenantUpdate, Tier

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


@router.get("", response_model=TenantPage, **guard(OPERATOR))
async def list_tenants(
    operator: Operator,
    db: Db,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    tier: Tier | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TenantPage:
    async with db.control() as session:
        rows, total = await service.list_tenants(
            session, status=status_, tier=tier, limit=limit, offset=offset
        )
    return TenantPage(
        items=[TenantOut.of(t) for t in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{slug}", response_model=TenantOut, name="show_tenant", **guard(OPERATOR))
async def show_tenant(slug: str, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        return TenantOut.of(await service.get(session, slug=slug))


@router.patch("/{slug}", response_model=TenantOut, **guard(OPERATOR))
async def update_tenant(slug: str, body: TenantUpdate, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.update(session, slug=slug, data=body, actor=operator.audit_name)
    return TenantOut.of(tenant)


@router.post("/{slug}/suspend", response_model=TenantOut, **guard(OPERATOR))
async def suspend_tenant(slug: str, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.suspend(session, slug=slug, actor=operator.audit_name)
    return TenantOut.of(tenant)


@router.post("/{slug}/resume", response_model=TenantOut, **guard(OPERATOR))
async def resume_tenant(slug: str, operator: Operator, db: Db) -> TenantOut:
    async with db.control() as session:
        tenant = await service.resume(session, slug=slug, actor=operator.audit_name)
    return TenantOut.of(tenant)


@router.delete("/{slug}", response_model=TenantOut, **guard(OPERATOR))
async def delete_tenant(slug: str, operator: Operator, db: Db) -> TenantOut:
    tenant, _ = await service.delete(db, slug=slug, actor=operator.audit_name)
    return TenantOut.of(tenant)


@router.get("/{slug}/audit", response_model=AuditPage, **guard(OPERATOR))
async def tenant_audit(
    slug: str,
    operator: Operator,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    async with db.control() as session:
        tenant = await service.get(session, slug=slug)
    async with db.tenant(tenant.id) as session:
        events, total = await audit.list_events(
            session, tenant_id=tenant.id, limit=limit, offset=offset
        )
    return AuditPage.of(events, total=total, limit=limit, offset=offset)


@router.get("/{slug}/audit/verify", response_model=ChainOut, **guard(OPERATOR))
async def verify_tenant_audit(slug: str, operator: Operator, db: Db) -> ChainOut:
    async with db.control() as session:
        tenant = await service.get(session, slug=slug)
        receipt = await deletion.receipt_of(session, tenant_id=tenant.id)
    if receipt is not None:
        return ChainOut.deleted(receipt)
    async with db.tenant(tenant.id) as session:
        report = await audit.verify(session, tenant_id=tenant.id)
    return ChainOut.model_validate(report, from_attributes=True)
