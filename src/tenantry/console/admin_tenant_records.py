"""Operators: a tenant's audit trail, page by page, and the check of its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from tenantry.console import render
from tenantry.console.common import PAGE_SIZE, Db, next_offset, tenant_by_slug
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.tenants import api as tenants_api

router = APIRouter(prefix="/admin/tenants/{slug}/audit")


@router.get("", **guard(OPERATOR))
async def audit_page(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    await tenant_by_slug(db, slug)  # 404 before anything else
    found = await tenants_api.tenant_audit(slug, operator, db, limit=PAGE_SIZE, offset=offset)
    return render.page(
        request,
        "admin/audit.html",
        slug=slug,
        events=found.items,
        total=found.total,
        offset=offset,
        next_offset=next_offset(offset, found.total),
    )


@router.get("/verify", **guard(OPERATOR))
async def verify(request: Request, slug: str, operator: Caller, db: Db) -> HTMLResponse:
    """The chain's verdict: a fragment for htmx, the audit page's own result without it."""
    chain = await tenants_api.verify_tenant_audit(slug, operator, db)
    if render.is_htmx(request):
        return render.fragment(request, "admin/chain.html", chain=chain, slug=slug)
    return render.page(request, "admin/chain_page.html", chain=chain, slug=slug)
