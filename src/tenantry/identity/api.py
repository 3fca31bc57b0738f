"""`/v1/auth/*` and `/v1/me`: logins, token refresh, logout, and who am I."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy import select

from tenantry.api_support import database, policy_of, settings_of
from tenantry.db.session import Database
from tenantry.errors import Forbidden, TenantSuspended, Unauthorized
from tenantry.identity import sessions, sso
from tenantry.identity.authn import UserDisabled
from tenantry.identity.dependencies import PUBLIC, Caller, guard
from tenantry.identity.permissions import Permission, granted_to
from tenantry.identity.schemas import LdapLoginIn, LoginIn, MeOut, RefreshIn, TokenOut
from tenantry.identity.sessions import Outcome
from tenantry.identity.tokens import REFRESH_PREFIX, parse_tenant_secret
from tenantry.settings import Settings
from tenantry.tenancy.client_address import client_address
from tenantry.tenants.models import Tenant

router = APIRouter(tags=["identity"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
INVALID = "Invalid credentials."


def answer_of(outcome: Outcome) -> TokenOut:
    """Turn a failed outcome into its error, after the transaction that recorded it committed."""
    if outcome.tokens is not None:
        return outcome.tokens
    if outcome.failure == "tenant-suspended":
        raise TenantSuspended("This tenant is suspended.")
    if outcome.failure == "user-disabled":
        raise UserDisabled("This user is disabled.")
    raise Unauthorized(INVALID)


async def _throttled_login(
    request: Request, tenant_slug: str, principal: str, check: Callable[[], Awaitable[Outcome]]
) -> TokenOut:
    """Both logins: the attempt is counted before the password is checked (refused once the
    account or the address has used its failures), and kept only if the password was wrong."""
    throttle = request.app.state.login_throttle
    attempt = await throttle.attempt(throttle.keys(tenant_slug, principal, client_address(request)))
    try:
        outcome = await check()
    except BaseException:
        await attempt.give_back()
        raise
    if outcome.failure == "invalid":
        await attempt.failed()
    elif outcome.tokens is not None:
        await attempt.succeeded()
    else:
        await attempt.give_back()
    return answer_of(outcome)


async def _password_login(db: Database, body: LoginIn, settings: Settings, key: str) -> Outcome:
    async with db.control() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == body.tenant))
    # The user and the session live in the tenant's cell.
    async with db.tenant(tenant.id) if tenant is not None else db.control() as session:
        return await sessions.login(
            session,
            tenant=tenant,
            email=body.email,
            password=body.password,
            settings=settings,
            key=key,
        )


@router.post(
    "/v1/auth/login",
    response_model=TokenOut,
    response_model_exclude_none=True,
    **guard(PUBLIC, 401, 403),
)
async def login(body: LoginIn, request: Request, db: Db, settings: Config) -> TokenOut:
    key = request.app.state.signing_key
    return await _throttled_login(
        request, body.tenant, body.email, lambda: _password_login(db, body, settings, key)
    )


@router.post(
    "/v1/auth/ldap",
    response_model=TokenOut,
    response_model_exclude_none=True,
    **guard(PUBLIC, 401, 403),
)
async def ldap_login(body: LdapLoginIn, request: Request, db: Db, settings: Config) -> TokenOut:
    state = request.app.state

    async def users_quota(tenant_id) -> int:
        return (await policy_of(request, tenant_id)).limits.users

    return await _throttled_login(
        request,
        body.tenant,
        body.username,
        lambda: sso.login(
            db,
            tenant_slug=body.tenant,
            username=body.username,
            password=body.password,
            settings=settings,
            key=state.signing_key,
            policy=state.egress_policy,
            gate=state.egress_gate,
            users_quota=users_quota,
        ),
    )


@router.post(
    "/v1/auth/refresh",
    response_model=TokenOut,
    response_model_exclude_none=True,
    **guard(PUBLIC, 401, 403),
)
async def refresh(body: RefreshIn, request: Request, db: Db, settings: Config) -> TokenOut:
    # The token names its tenant, whose cell holds its session.
    parsed = parse_tenant_secret(REFRESH_PREFIX, body.refresh_token)
    async with db.tenant(parsed.tenant_id) if parsed is not None else db.control() as session:
        outcome = await sessions.refresh(
            session, token=body.refresh_token, settings=settings, key=request.app.state.signing_key
        )
    return answer_of(outcome)


@router.post("/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, **guard(Permission.ME))
async def logout(subject: Caller, db: Db) -> Response:
    if subject.session_id is None:
        raise Forbidden("Only a user's session can be logged out; revoke an API key instead.")
    async with db.tenant(subject.tenant.id) as session:
        await sessions.logout(
            session,
            tenant_id=subject.tenant.id,
            session_id=subject.session_id,
            actor=subject.audit_name,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/me", response_model=MeOut, **guard(Permission.ME))
async def me(subject: Caller) -> MeOut:
    granted = granted_to(subject)
    return MeOut(
        kind=subject.kind,
        id=subject.id,
        name=subject.name,
        tenant=subject.tenant.slug,
        tier=subject.tenant.tier,
        role=subject.role,
        scopes=sorted(subject.scopes),
        permissions=sorted(str(p) for p in granted),
    )
