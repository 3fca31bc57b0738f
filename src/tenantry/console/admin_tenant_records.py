"""Operators: a tenant's audit trail, page by page, and the check of its hash chain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Db, tenant_by_slug
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.tenants import api as tenants_api

router = APIRouter(prefix="/admin/tenants/{slug}/audit")


@router.get("", **guard(OPERATOR))
async def audit_page(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    cursor: lists.Cursor = None,
) -> HTMLResponse:
    await tenant_by_slug(db, slug)  # 404 before anything else
    found = await lists.audit_events(operator, db, slug, cursor)
    return render.page(
        request,
        "admin/audit.html",
        slug=slug,
        events=found.items,
        next_cursor=found.next_cursor,
    )


@router.get("/verify", **guard(OPERATOR))
async def verify(request: Request, slug: str, operator: Caller, db: Db) -> HTMLResponse:
    """The chain's verdict: a fragment for htmx, the audit page's own result without it."""
    chain = await tenants_api.verify_tenant_audit(slug, operator, db)
    if render.is_htmx(request):
        return render.fragment(request, "admin/chain.html", chain=chain, slug=slug)
    return render.page(request, "admin/chain_page.html", chain=chain, slug=slug)
