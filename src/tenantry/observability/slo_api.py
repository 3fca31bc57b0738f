"""`GET /v1/slo` for a tenant's own SLOs; `GET /v1/admin/tenants/{slug}/slo` for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tenantry.api_support import database
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.observability import slo
from tenantry.tenants import service as tenants

router = APIRouter(tags=["slo"])
Db = Annotated[Database, Depends(database)]


@router.get("/v1/slo", response_model=slo.SloOut, **guard(Permission.USAGE_READ))
async def own_slo(subject: Caller, db: Db) -> slo.SloOut:
    tenant = subject.tenant
    return await slo.report(db, tenant_id=tenant.id, slug=tenant.slug, tier=tenant.tier)


@router.get("/v1/admin/tenants/{slug}/slo", response_model=slo.SloOut, **guard(OPERATOR))
async def tenant_slo(slug: str, db: Db) -> slo.SloOut:
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
    return await slo.report(db, tenant_id=tenant.id, slug=tenant.slug, tier=tenant.tier)
