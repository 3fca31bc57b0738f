"""A tenant user's home, and the tenant's usage against its limits."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tenantry.console import render
from tenantry.console.common import Db
from tenantry.console.usage_plot import plot
from tenantry.db.base import utcnow
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.limits import api as limits_api

router = APIRouter()


async def _usage(request: Request, subject, db):
    end = utcnow().date()
    start = end - timedelta(days=30)
    usage = await limits_api.usage(subject, db, request, start, end)
    return usage, plot(usage.days, start=start, end=end)


@router.get("/overview", **guard(Permission.ME))
async def overview(request: Request, subject: Caller, db: Db) -> HTMLResponse:
    usage = None
    if render.can(subject, Permission.USAGE_READ):
        usage, _ = await _usage(request, subject, db)
    return render.page(request, "tenant/overview.html", usage=usage)


@router.get("/usage", **guard(Permission.USAGE_READ))
async def usage_page(request: Request, subject: Caller, db: Db) -> HTMLResponse:
    usage, chart = await _usage(request, subject, db)
    return render.page(request, "tenant/usage.html", usage=usage, usage_plot=chart)
