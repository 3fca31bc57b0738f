"""Operators: one tenant's configuration, changed, compared and rolled back from its page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.config import api as config_api
from tenantry.console import config_actions, render
from tenantry.console.common import Config, Db, FormText, merge_patch, tenant_by_slug
from tenantry.identity.dependencies import OPERATOR, Caller, guard

router = APIRouter(prefix="/admin/tenants/{slug}/config")
Version = Annotated[int, Form(ge=0)]


@router.post("", **guard(OPERATOR))
async def change(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    settings: Config,
    path: Annotated[str, Form(max_length=200)],
    value: FormText = "",
) -> Response:
    tenant = await tenant_by_slug(db, slug)
    version = await config_api.new_version(
        request,
        db,
        settings,
        tenant_id=tenant.id,
        tier=tenant.tier,
        author=operator.audit_name,
        patch=merge_patch(path, value),
    )
    return render.done(
        request, f"/console/admin/tenants/{slug}", f"{path} changed: version {version}."
    )


@router.post("/rollback", **guard(OPERATOR))
async def rollback(
    request: Request, slug: str, operator: Caller, db: Db, settings: Config, version: Version
) -> Response:
    tenant = await tenant_by_slug(db, slug)
    new = await config_api.new_version(
        request,
        db,
        settings,
        tenant_id=tenant.id,
        tier=tenant.tier,
        author=operator.audit_name,
        to_version=version,
    )
    return render.done(
        request,
        f"/console/admin/tenants/{slug}",
        f"Rolled back to version {version}: now version {new}.",
    )


@router.get("/diff", **guard(OPERATOR))
async def diff(
    request: Request,
    slug: str,
    db: Db,
    before: Annotated[int, Query(alias="from", ge=0)],
    after: Annotated[int, Query(alias="to", ge=0)],
) -> HTMLResponse:
    tenant = await tenant_by_slug(db, slug)
    changes = await config_actions.diff(db, tenant_id=tenant.id, before=before, after=after)
    return render.page(
        request,
        "config_diff.html",
        changes=changes,
        before=before,
        after=after,
        back=f"/console/admin/tenants/{slug}",
        heading=f"{tenant.slug}: configuration {before} → {after}",
    )
