"""`/v1/usage` for a tenant; `/v1/admin/usage` (billing export) and limits for operators."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tenantry.api_support import database, forget_cached, policy_of
from tenantry.api_types import SlugRef
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.errors import ValidationFailed
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.knowledge import service as knowledge
from tenantry.limits import service
from tenantry.limits.schemas import TenantLimitsOut, UsageOut, UsageRow
from tenantry.pages import Page, PageParams
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.tiers import LimitsPatch

router = APIRouter(tags=["limits and usage"])
Db = Annotated[Database, Depends(database)]
From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]
# The tenant's report lists days: a year at most, so it stays one bounded answer.
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD = timedelta(days=30)
EXPORT_PAGE = 1000


def _period(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or utcnow().date()
    start = start or (end - DEFAULT_PERIOD if end - date.min > DEFAULT_PERIOD else date.min)
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
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(
            f"The period may span at most {MAX_PERIOD_DAYS} days.",
            errors=[
                {"field": "query.from", "message": f"more than {MAX_PERIOD_DAYS} days before to"}
            ],
        )
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


@router.get(
    "/v1/admin/usage",
    response_model=Page[UsageRow],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    **guard(OPERATOR),
)
async def usage_export(
    db: Db,
    request: Request,
    paging: PageParams,
    start: From = None,
    end: To = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Every tenant's daily usage, for billing: a page of rows as JSON, or all of them as CSV."""
    start, end = _period(start, end)
    await request.app.state.meter.flush(db)
    limit = paging.limit if format == "json" else EXPORT_PAGE
    # The first page before any byte is sent: a bad cursor is still a 422, not a cut stream.
    async with db.control() as session:
        rows, next_cursor = await service.usage_rows(
            session, db, start=start, end=end, cursor=paging.cursor, limit=limit
        )
    if format == "json":
        page = Page[UsageRow](items=rows, next_cursor=next_cursor, limit=limit)
        return JSONResponse(page.model_dump(mode="json"))
    return StreamingResponse(
        _csv_export(db, start, end, rows, next_cursor),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="usage-{start}-{end}.csv"'},
    )


async def _csv_export(
    db: Database, start: date, end: date, rows: list[UsageRow], cursor: str | None
) -> AsyncIterator[str]:
    """The whole export from `rows` on, a page (one short transaction) at a time."""
    yield "tenant,day,metric,value\r\n"
    while True:
        out = io.StringIO()
        csv.writer(out).writerows([r.tenant, r.day.isoformat(), r.metric, r.value] for r in rows)
        yield out.getvalue()
        if cursor is None:
            return
        async with db.control() as session:
            rows, cursor = await service.usage_rows(
                session, db, start=start, end=end, cursor=cursor, limit=EXPORT_PAGE
            )


@router.get("/v1/admin/tenants/{slug}/limits", response_model=TenantLimitsOut, **guard(OPERATOR))
async def show_limits(slug: SlugRef, db: Db) -> TenantLimitsOut:
    async with db.control() as session:
        return service.limits_view(await tenants.get(session, slug=slug))


@router.patch("/v1/admin/tenants/{slug}/limits", response_model=TenantLimitsOut, **guard(OPERATOR))
async def set_limits(
    slug: SlugRef, body: LimitsPatch, operator: Caller, db: Db, request: Request
) -> TenantLimitsOut:
    async with db.control() as session:
        tenant = await service.set_overrides(
            session, slug=slug, patch=body, actor=operator.audit_name
        )
    await cell_changes.apply_owed(db, tenant)
    forget_cached(request, tenant.cache_prefix)
    return service.limits_view(tenant)
