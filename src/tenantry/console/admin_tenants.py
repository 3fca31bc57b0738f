"""Operators: the tenant list, a tenant's page, and its lifecycle and limits.

Each action calls the API's own handler for it, so it is checked, audited and counted exactly
as the same call to `/v1/admin/tenants` would be.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.config import service as config_service
from tenantry.console import admin_tenant_ops, extensions, lists, render
from tenantry.console.common import (
    Config,
    Db,
    config_rows,
    tenant_by_slug,
)
from tenantry.console.forms import parse
from tenantry.console.usage_plot import plot
from tenantry.db.base import utcnow
from tenantry.errors import ValidationFailed
from tenantry.identity import admin_api as operators_api
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.identity.schemas import UserCreate
from tenantry.limits import api as limits_api
from tenantry.limits import service as limits_service
from tenantry.tenants import api as tenants_api
from tenantry.tenants import search
from tenantry.tenants.namespaces import has_own_namespace
from tenantry.tenants.schemas import TenantCreate, TenantUpdate
from tenantry.tenants.tiers import TIERS, LimitsPatch

router = APIRouter(prefix="/admin/tenants")
STATUSES = ("active", "suspended", "deleting", "deleted")
LIMIT_NAMES = tuple(LimitsPatch.model_fields)
Slug = Annotated[str, Form(max_length=64)]


@router.get("", **guard(OPERATOR))
async def tenant_list(
    request: Request,
    db: Db,
    q: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[Literal["", "active", "suspended", "deleting", "deleted"], Query()] = "",
    tier: Annotated[Literal["", "free", "standard", "enterprise"], Query()] = "",
    cell: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    async with db.control() as session:
        rows, next_after = await search.find_tenants(
            session,
            text=q.strip() or None,
            status=status or None,
            tier=tier or None,
            cell=cell or None,
            after=after or None,
            limit=25,
        )
        cells = await search.cells(session)
    filters = {"q": q, "status": status, "tier": tier, "cell": cell}
    return render.page(
        request,
        "admin/tenants.html",
        tenants=rows,
        filters=filters,
        next_query={**filters, "after": next_after} if next_after else None,
        statuses=STATUSES,
        tiers=tuple(TIERS),
        cells=cells,
    )


@router.post("", **guard(OPERATOR))
async def create_tenant(
    request: Request,
    operator: Caller,
    db: Db,
    settings: Config,
    slug: Slug,
    name: Annotated[str, Form(max_length=200)],
    tier: Annotated[str, Form(max_length=32)] = "free",
) -> Response:
    body = parse(TenantCreate, slug=slug.strip(), name=name.strip(), tier=tier)
    created = await tenants_api.create_tenant(body, operator, db, settings, Response(), request)
    return render.done(
        request, f"/console/admin/tenants/{created.slug}", f"Tenant {created.slug} created."
    )


@router.get("/{slug}", **guard(OPERATOR))
async def tenant_page(
    request: Request, slug: str, operator: Caller, db: Db, settings: Config
) -> HTMLResponse:
    tenant = await tenant_by_slug(db, slug)
    end = utcnow().date()
    start = end - timedelta(days=30)
    await request.app.state.meter.flush(db, tenant_id=tenant.id)
    async with db.tenant(tenant.id) as session:
        effective = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
        days = await limits_service.daily_usage(session, tenant_id=tenant.id, start=start, end=end)
    versions = await lists.config_versions(db, tenant.id, None, size=10)
    events = await lists.audit_events(operator, db, tenant.slug, None, size=10)
    backups = await admin_tenant_ops.recent_backups(db, tenant)
    return render.page(
        request,
        "admin/tenant.html",
        tenant=tenant,
        limits=limits_service.limits_view(tenant),
        limit_names=LIMIT_NAMES,
        config=config_rows(effective.config, effective.sources),
        config_version=effective.tenant_version,
        versions=versions.items,
        usage=plot(days, start=start, end=end),
        events=events.items,
        tiers=tuple(TIERS),
        temporal_link=extensions.temporal_ui_link(
            request.app, tenant.slug, own_namespace=has_own_namespace(effective.config)
        ),
        sections=await extensions.tenant_sections(request, tenant),
        backups=backups,
        running=admin_tenant_ops.any_running(backups),
        health=await admin_tenant_ops.health_of(db, tenant),
        **await admin_tenant_ops.placement(db, tenant, settings),
    )


@router.post("/{slug}/tier", **guard(OPERATOR))
async def change_tier(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    tier: Annotated[str, Form(max_length=32)],
) -> Response:
    body = parse(TenantUpdate, tier=tier)
    await tenants_api.update_tenant(slug, body, operator, db)
    return render.done(request, f"/console/admin/tenants/{slug}", f"Tier changed to {tier}.")


@router.post("/{slug}/suspend", **guard(OPERATOR))
async def suspend(request: Request, slug: str, operator: Caller, db: Db) -> Response:
    await tenants_api.suspend_tenant(slug, operator, db)
    return render.done(request, f"/console/admin/tenants/{slug}", f"Tenant {slug} suspended.")


@router.post("/{slug}/resume", **guard(OPERATOR))
async def resume(request: Request, slug: str, operator: Caller, db: Db) -> Response:
    await tenants_api.resume_tenant(slug, operator, db)
    return render.done(request, f"/console/admin/tenants/{slug}", f"Tenant {slug} resumed.")


@router.post("/{slug}/delete", **guard(OPERATOR))
async def delete(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    confirm: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Deleting needs the tenant's handle typed again: nothing is undone afterwards."""
    if confirm.strip() != slug:
        raise ValidationFailed(
            f"Type the tenant's handle, {slug}, to delete it; nothing was deleted.",
            errors=[{"field": "form.confirm", "message": "does not match the tenant's handle"}],
        )
    await tenants_api.delete_tenant(slug, operator, db)
    return render.done(
        request, f"/console/admin/tenants/{slug}/deletion", f"Tenant {slug} deleted."
    )


@router.post("/{slug}/users", **guard(OPERATOR))
async def add_user(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=512)],
    role: Annotated[str, Form(max_length=32)] = "admin",
) -> Response:
    """A tenant's first users (its admins then add the rest themselves), as the API adds them."""
    body = parse(UserCreate, email=email.strip(), password=password, role=role)
    created = await operators_api.create_tenant_user(slug, body, operator, db, request)
    return render.done(
        request, f"/console/admin/tenants/{slug}", f"User {created.email} ({created.role}) added."
    )


@router.post("/{slug}/limits", **guard(OPERATOR))
async def set_limit(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    name: Annotated[str, Form(max_length=64)],
    value: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """One override: a number sets it, an empty value returns the limit to the tier's."""
    if name not in LIMIT_NAMES:
        raise ValidationFailed(
            f"No limit named '{name}'.", errors=[{"field": "form.name", "message": "unknown"}]
        )
    body = parse(LimitsPatch, **{name: value.strip() or None})
    await limits_api.set_limits(slug, body, operator, db, request)
    shown = value.strip() or "the tier's value"
    return render.done(request, f"/console/admin/tenants/{slug}", f"Limit {name} set to {shown}.")
