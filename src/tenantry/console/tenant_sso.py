"""Tenant admins: single sign-on, by their directory (LDAP) and by their identity provider
(OIDC), saved through the API's own handlers (with their reachability checks)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import render
from tenantry.console.common import Config, Db
from tenantry.console.forms import parse
from tenantry.errors import NotFound, ValidationFailed
from tenantry.identity import oidc_api, sso_api
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import LdapConfigIn, OidcConfigIn

router = APIRouter(prefix="/sso")
MANAGE = guard(Permission.SSO_MANAGE)
Text = Annotated[str, Form(max_length=2000)]


def _json_object(raw: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValidationFailed(
            'Give a JSON object, such as {"staff": "member"}.',
            errors=[{"field": f"form.{field}", "message": "not a JSON object"}],
        )
    return value


@router.get("", **MANAGE)
async def sso_page(request: Request, subject: Caller, db: Db, settings: Config) -> HTMLResponse:
    try:
        ldap = await sso_api.show_ldap(subject, db)
    except NotFound:
        ldap = None
    try:
        oidc = await oidc_api.show_oidc(subject, db, request, settings)
    except NotFound:
        oidc = None
    return render.page(request, "tenant/sso.html", ldap=ldap, oidc=oidc)


@router.post("", **MANAGE)
async def save_ldap(
    request: Request,
    subject: Caller,
    db: Db,
    server_url: Text,
    base_dn: Text,
    bind_template: Text,
    group_role_map: Annotated[str, Form(max_length=10_000)] = "{}",
    default_role: Annotated[str, Form(max_length=32)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    body = parse(
        LdapConfigIn,
        server_url=server_url.strip(),
        base_dn=base_dn.strip(),
        bind_template=bind_template.strip(),
        group_role_map=_json_object(group_role_map, "group_role_map"),
        default_role=default_role or None,
        enabled=enabled == "on",
    )
    await sso_api.put_ldap(body, subject, db, request.app.state.egress_policy)
    return render.done(request, "/console/sso", "Directory sign-in saved.")


@router.post("/delete", **MANAGE)
async def delete_ldap(request: Request, subject: Caller, db: Db) -> Response:
    await sso_api.delete_ldap(subject, db)
    return render.done(request, "/console/sso", "Directory sign-in removed.")


@router.post("/oidc", **MANAGE)
async def save_oidc(
    request: Request,
    subject: Caller,
    db: Db,
    settings: Config,
    issuer: Text,
    client_id: Text,
    allowed_domains: Text,
    client_secret: Text = "",
    role_claim: Annotated[str, Form(max_length=100)] = "",
    role_map: Annotated[str, Form(max_length=10_000)] = "{}",
    default_role: Annotated[str, Form(max_length=32)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """An empty secret keeps the stored one, as omitting it through the API does."""
    body = parse(
        OidcConfigIn,
        issuer=issuer.strip(),
        client_id=client_id.strip(),
        client_secret=client_secret or None,
        allowed_domains=[d.strip() for d in allowed_domains.split(",") if d.strip()],
        role_claim=role_claim.strip() or None,
        role_map=_json_object(role_map, "role_map"),
        default_role=default_role or None,
        enabled=enabled == "on",
    )
    await oidc_api.put_oidc(body, subject, db, request, settings, request.app.state.egress_policy)
    return render.done(request, "/console/sso", "Identity provider sign-in saved.")


@router.post("/oidc/delete", **MANAGE)
async def delete_oidc(request: Request, subject: Caller, db: Db) -> Response:
    await oidc_api.delete_oidc(subject, db)
    return render.done(request, "/console/sso", "Identity provider sign-in removed.")
