"""Signing in and out: one page for operators and tenant users.

The sign-in calls the API's own login handlers (the same throttling of failed attempts, the same
audit events, the same refusals for a suspended tenant or a disabled user) and keeps the tokens
they answer in the console's session cookie. Without an organisation, the email and password are
an operator's; with one, a tenant user's, by password or, where the tenant has it, its directory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from tenantry.api_support import database, settings_of
from tenantry.console import render
from tenantry.console import session as sessions
from tenantry.console.forms import parse, safe_next
from tenantry.db.session import Database
from tenantry.errors import AppError, Forbidden
from tenantry.identity import access_tokens, bootstrap, operators
from tenantry.identity import admin_api as operator_api
from tenantry.identity import api as identity_api
from tenantry.identity import sessions as identity_sessions
from tenantry.identity.authn import Authenticator
from tenantry.identity.dependencies import PUBLIC, Caller, guard
from tenantry.identity.models import LdapConfig, OidcConfig
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import (
    LdapLoginIn,
    LoginIn,
    OperatorCreate,
    OperatorLoginIn,
    TokenOut,
)
from tenantry.settings import Settings
from tenantry.tenancy.subjects import current_subject
from tenantry.tenants.models import Tenant

router = APIRouter()
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
Text = Annotated[str, Form(max_length=512)]
OptionalText = Annotated[str, Form(max_length=512)]


async def home(request: Request) -> Response:
    """`/console` itself: added by `install`, as a router cannot hold an empty path."""
    subject = current_subject()
    if subject is None:
        return RedirectResponse("/console/login", status_code=303)
    target = "/console/admin/tenants" if subject.is_operator else "/console/overview"
    return RedirectResponse(target, status_code=303)


async def _methods(db: Database, slug: str | None) -> list[str]:
    """How one signs in to `slug`: the password always; the directory where it is enabled.

    An unknown organisation looks like one with passwords only, so the page tells nobody which
    organisations exist.
    """
    if not slug:
        return ["password"]
    async with db.control() as session:
        tenant_id = await session.scalar(
            select(Tenant.id).where(Tenant.slug == slug, Tenant.status == "active")
        )
    if tenant_id is None:
        return ["password"]
    async with db.tenant(tenant_id) as session:
        ldap = await session.get(LdapConfig, tenant_id)
        oidc = await session.get(OidcConfig, tenant_id)
    methods = ["password"]
    if ldap is not None and ldap.enabled:
        methods.append("ldap")
    if oidc is not None and oidc.enabled:
        methods.append("oidc")
    return methods


def _sign_in_page(
    request: Request,
    *,
    methods: list[str],
    tenant: str,
    next_url: str,
    problem: dict | None = None,
    status_code: int = 200,
    email: str = "",
) -> HTMLResponse:
    current = sessions.current(request)
    if current is None or current.signed_in:
        # A form's CSRF token before anyone signs in; replaced by a new one on sign-in.
        sessions.replace_session(request, sessions.anonymous())
    return render.page(
        request,
        "sign_in.html",
        status_code=status_code,
        methods=methods,
        tenant=tenant,
        next_url=next_url,
        problem=problem,
        email=email,
        oidc_url=f"/console/oidc/{tenant}/start" if "oidc" in methods else None,
    )


@router.get("/login", **guard(PUBLIC))
async def sign_in_form(
    request: Request, db: Db, next: str | None = None, tenant: str = ""
) -> HTMLResponse:
    tenant = tenant.strip().lower()[:64]
    return _sign_in_page(
        request, methods=await _methods(db, tenant), tenant=tenant, next_url=safe_next(next)
    )


@router.post("/login", **guard(PUBLIC))
async def sign_in(
    request: Request,
    db: Db,
    settings: Config,
    email: Text,
    password: Text,
    tenant: OptionalText = "",
    method: Annotated[str, Form(pattern="^(password|ldap)$")] = "password",
    next: OptionalText = "/console",
) -> Response:
    tenant = tenant.strip().lower()
    next_url = safe_next(next)
    try:
        tokens = await _login(
            request, db, settings, tenant=tenant, method=method, who=email, password=password
        )
    except AppError as error:
        return await refused(
            request, db, tenant=tenant, error=error, next_url=next_url, email=email
        )
    if not tenant:
        tokens = await _operator_session(request, db, tokens.access_token)
    session = sessions.signed_in(
        kind="user" if tenant else "operator",
        access_token=tokens.access_token,
        access_seconds=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        tenant=tenant or None,
    )
    sessions.replace_session(request, session)
    return RedirectResponse(next_url, status_code=303)


async def _operator_session(request: Request, db: Database, access_token: str) -> TokenOut:
    """An operator's console session: a revocable operator token lasting as long as a tenant
    user's session, in place of the bare access token their login hands out (and which could
    not be renewed: operators get no refresh token)."""
    claims = access_tokens.decode(request.app.state.signing_key, access_token)
    async with db.control() as session:
        token = await operators.open_session(
            session, operator_id=claims.subject_id, hours=sessions.SESSION_HOURS
        )
    return TokenOut(access_token=token, expires_in=sessions.SESSION_HOURS * 3600)


async def refused(
    request: Request,
    db: Database,
    *,
    tenant: str,
    error: AppError,
    next_url: str = "/console",
    email: str = "",
) -> HTMLResponse:
    """The sign-in page again, with why the sign-in was refused (whichever way it was tried)."""
    return _sign_in_page(
        request,
        methods=await _methods(db, tenant),
        tenant=tenant,
        next_url=next_url,
        problem=error.to_problem(request.url.path),
        status_code=error.status,
        email=email,
    )


async def _login(
    request: Request, db: Database, settings: Settings, *, tenant, method, who, password
):
    """The API's login for this kind of caller: its tokens, or its error."""
    if not tenant:
        body = parse(OperatorLoginIn, email=who, password=password)
        return await operator_api.operator_login(body, request, db, settings)
    if method == "ldap":
        body = parse(LdapLoginIn, tenant=tenant, username=who, password=password)
        return await identity_api.ldap_login(body, request, db, settings)
    body = parse(LoginIn, tenant=tenant, email=who, password=password)
    return await identity_api.login(body, request, db, settings)


@router.post("/logout", **guard(Permission.ME))
async def sign_out(request: Request, subject: Caller, db: Db) -> Response:
    """A user's session is revoked as `/v1/auth/logout` revokes it; the cookie goes either way."""
    if subject.session_id is not None:
        async with db.tenant(subject.tenant.id) as session:
            await identity_sessions.logout(
                session,
                tenant_id=subject.tenant.id,
                session_id=subject.session_id,
                actor=subject.audit_name,
            )
    return _signed_out(request)


@router.post("/admin/logout", **guard("operator"))
async def operator_sign_out(request: Request, db: Db) -> Response:
    """The session's operator token is revoked: the cookie, even if kept, opens nothing."""
    current = sessions.current(request)
    if current is not None and current.access_token:
        async with db.control() as session:
            await operators.close_session(session, token=current.access_token)
    return _signed_out(request)


def _signed_out(request: Request) -> Response:
    slug = (sessions.current(request) or sessions.anonymous()).tenant
    sessions.replace_session(request, None)
    target = "/console/login" + (f"?tenant={slug}" if slug else "")
    return render.done(request, target, "Signed out.")


@router.get("/setup", **guard(PUBLIC))
async def setup_form(request: Request) -> HTMLResponse:
    if sessions.current(request) is None:
        sessions.replace_session(request, sessions.anonymous())
    return render.page(request, "setup.html")


@router.post("/setup", **guard(PUBLIC))
async def setup(
    request: Request,
    db: Db,
    settings: Annotated[Settings, Depends(settings_of)],
    token: Annotated[str, Form(min_length=1, max_length=2048)],
    email: Text,
    name: Annotated[str, Form(max_length=200)],
    password: Text,
) -> Response:
    """The first operator, created with the bootstrap token as `POST /v1/admin/operators` is."""
    data = parse(OperatorCreate, email=email, name=name, password=password)
    caller = await Authenticator(request.app.state).subject_of(token.strip())
    if caller is None or not caller.is_operator:
        raise Forbidden("That is not a valid bootstrap or operator token.")
    async with db.control() as session:
        operator = await operators.create(session, data=data)
    bootstrap.discard_file(settings.home)  # spent now, as the API's own creation does
    return render.done(
        request,
        "/console/login",
        f"Operator {operator.email} created: sign in with its email and password, and no "
        "organisation.",
    )
