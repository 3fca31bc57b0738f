"""`/v1/usage` for a tenant; `/v1/admin/usage` (billing export) and limits for operators."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from tenantry.api_support import database, forget_cached, policy_of
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.errors import ValidationFailed
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.knowledge import service as knowledge
from tenantry.limits import service
from tenantry.limits.schemas import TenantLimitsOut, UsageOut, UsageRow
from tenantry.tenants import service as tenants
from tenantry.tenants.tiers import LimitsPatch

router = APIRouter(tags=["limits and usage"])
Db = Annotated[Database, Depends(database)]
From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or utcnow().date()
    start = start or end - timedelta(days=30)
    if start > end:
        raise ValidationFailed(
            "from must not be after to.", errors=[{"field": "query.from", "message": "after to"}]
        )
    return start, end


@router.get("/v1/usage", response_model=UsageOut, **guard(Permission.USAGE_READ))
async def usage(
    subject: Caller, db: Db, request: Request, start: From = None, end: To = None
) -> UsageOut:
    start, end = _period(start, end)
    policy = await policy_of(request, subject.tenant.id)
    # What this process counted so far, included.
    await request.app.state.meter.flush(db, tenant_id=subject.tenant.id)
    async with db.tenant(subject.tenant.id) as session:
        days = await service.daily_usage(session, tenant_id=subject.tenant.id, start=start, end=end)
        current = await service.current_counts(session, tenant_id=subject.tenant.id)
        current |= await knowledge.stored(session, tenant_id=subject.tenant.id)
    return UsageOut(
        tenant=policy.slug, tier=policy.tier, days=days, current=current, limits=policy.limits
    )


@router.get("/v1/admin/usage", **guard(OPERATOR))
async def usage_export(
    db: Db,
    request: Request,
    start: From = None,
    end: To = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Every tenant's daily usage, for billing."""
    start, end = _period(start, end)
    await request.app.state.meter.flush(db)
    async with db.control() as session:
        everyone, _ = await tenants.list_tenants(session, limit=100_000)
    rows: list[UsageRow] = []
    for tenant in everyone:
        async with db.tenant(tenant.id) as session:
            for day in await service.daily_usage(
                session, tenant_id=tenant.id, start=start, end=end
            ):
                rows += [
                    UsageRow(tenant=tenant.slug, day=day.day, metric=m, value=v)
                    for m, v in sorted(day.metrics.items())
                ]
    if format == "json":
        return JSONResponse([r.model_dump(mode="json") for r in rows])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tenant", "day", "metric", "value"])
    writer.writerows([r.tenant, r.day.isoformat(), r.metric, r.value] for r in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="usage-{start}-{end}.csv"'},
    )


@router.get("/v1/admin/tenants/{slug}/limits", response_model=TenantLimitsOut, **guard(OPERATOR))
async def show_limits(slug: str, db: Db) -> TenantLimitsOut:
    async with db.control() as session:
        return service.limits_view(await tenants.get(session, slug=slug))


@router.patch("/v1/admin/tenants/{slug}/limits", response_model=TenantLimitsOut, **guard(OPERATOR))
async def set_limits(
    slug: str, body: LimitsPatch, operator: Caller, db: Db, request: Request
) -> TenantLimitsOut:
    async with db.control() as session:
        tenant = await service.set_overrides(
            session, slug=slug, patch=body, actor=operator.audit_name
        )
    forget_cached(request, tenant.cache_prefix)
    return service.limits_view(tenant)
