"""Tenant admins: their configuration with its layers, history, diffs and rollback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.api_support import policy_of
from tenantry.config import api as config_api
from tenantry.console import config_actions, lists, render
from tenantry.console.common import Config, Db, FormText, config_rows, merge_patch
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission

router = APIRouter()


@router.get("/config", **guard(Permission.CONFIG_READ))
async def config_page(
    request: Request, subject: Caller, db: Db, cursor: lists.Cursor = None
) -> HTMLResponse:
    effective = (await policy_of(request, subject.tenant.id)).effective
    versions = await lists.config_versions(db, subject.tenant.id, cursor)
    return render.page(
        request,
        "tenant/config.html",
        config=config_rows(effective.config, effective.sources),
        config_version=effective.tenant_version,
        versions=versions.items,
        next_cursor=versions.next_cursor,
    )


@router.post("/config", **guard(Permission.CONFIG_MANAGE))
async def change(
    request: Request,
    subject: Caller,
    db: Db,
    settings: Config,
    path: Annotated[str, Form(max_length=200)],
    value: FormText = "",
) -> Response:
    version = await config_api.new_version(
        request,
        db,
        settings,
        tenant_id=subject.tenant.id,
        tier=subject.tenant.tier,
        author=subject.audit_name,
        patch=merge_patch(path, value),
    )
    return render.done(request, "/console/config", f"{path} changed: version {version}.")


@router.post("/config/rollback", **guard(Permission.CONFIG_MANAGE))
async def rollback(
    request: Request,
    subject: Caller,
    db: Db,
    settings: Config,
    version: Annotated[int, Form(ge=0)],
) -> Response:
    new = await config_api.new_version(
        request,
        db,
        settings,
        tenant_id=subject.tenant.id,
        tier=subject.tenant.tier,
        author=subject.audit_name,
        to_version=version,
    )
    return render.done(
        request, "/console/config", f"Rolled back to version {version}: now version {new}."
    )


@router.get("/config/diff", **guard(Permission.CONFIG_READ))
async def diff(
    request: Request,
    subject: Caller,
    db: Db,
    before: Annotated[int, Query(alias="from", ge=0)],
    after: Annotated[int, Query(alias="to", ge=0)],
) -> HTMLResponse:
    changes = await config_actions.diff(db, tenant_id=subject.tenant.id, before=before, after=after)
    return render.page(
        request,
        "config_diff.html",
        changes=changes,
        before=before,
        after=after,
        back="/console/config",
        heading=f"Configuration {before} → {after}",
    )
