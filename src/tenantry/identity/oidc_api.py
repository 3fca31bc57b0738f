"""OIDC single sign-on: `/v1/auth/oidc/{tenant}/start` and `/callback` for browsers, and
`/v1/sso/oidc` for a tenant admin's connection settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from tenantry.api_support import database, egress_policy, policy_of, settings_of
from tenantry.db.session import Database
from tenantry.egress.policy import EgressError, EgressPolicy
from tenantry.egress.problems import problem
from tenantry.errors import MalformedRequest
from tenantry.identity import oidc
from tenantry.identity.api import answer_of
from tenantry.identity.dependencies import PUBLIC, Caller, guard
from tenantry.identity.oidc_provider import TokenRejected
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import OidcConfigIn, OidcConfigOut, SlugRef, TokenOut
from tenantry.identity.sessions import Outcome
from tenantry.identity.sso_accounts import sign_in
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

router = APIRouter(tags=["sso"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
Policy = Annotated[EgressPolicy, Depends(egress_policy)]
COOKIE = "tenantry_oidc"
PROVIDER = "The tenant's identity provider"


def callback_path(slug: str) -> str:
    return f"/v1/auth/oidc/{slug}/callback"


def redirect_uri(request: Request, settings: Settings, slug: str, path: str | None = None) -> str:
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + (path or callback_path(slug))


async def begin(
    request: Request, db: Database, settings: Settings, *, slug: str, callback: str
) -> RedirectResponse:
    """To the tenant's provider, with this browser's cookie for `callback` (the API's or the
    console's: the same flow ends in tokens or in a console session)."""
    state = request.app.state
    tenant = await _live_tenant(db, slug)
    async with db.tenant(tenant.id) as session:
        conn = await oidc.connection(session, tenant=tenant, secrets_key=state.oidc_secrets_key)
    try:
        async with state.egress_gate.slot(conn.tenant_id):
            metadata = await state.oidc_providers.metadata(conn.issuer)
    except EgressError as error:
        raise problem(error, what=PROVIDER) from error
    async with db.tenant(conn.tenant_id) as session:
        url, browser = await oidc.remember(
            session,
            conn=conn,
            authorization_endpoint=metadata["authorization_endpoint"],
            redirect_uri=redirect_uri(request, settings, slug, callback),
        )
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        COOKIE,
        browser,
        max_age=oidc.SIGN_IN_SECONDS,
        path=callback,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, not on other sites' posts
    )
    return response


async def _live_tenant(db: Database, slug: str) -> Tenant:
    """The tenant on the control plane; its sign-ins and users live in its cell (`db.tenant`)."""
    async with db.control() as session:
        return await oidc.live_tenant(session, slug=slug)


@dataclass
class ProviderAnswer:
    """What the provider sends the browser back with: a code and our state, or an error."""

    code: str | None = None
    state: str | None = None
    error: str | None = None


async def provider_answer(
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> ProviderAnswer:
    # An async dependency: a class as `Depends()` would run in the thread pool on every callback.
    return ProviderAnswer(code=code, state=state, error=error)


Answer = Annotated[ProviderAnswer, Depends(provider_answer)]


async def finish(
    request: Request, db: Database, settings: Settings, *, slug: str, answer: ProviderAnswer
) -> Outcome:
    """The provider's answer redeemed, verified and turned into a sign-in (or its refusal)."""
    app = request.app.state
    code, state, error = answer.code, answer.state, answer.error
    if error is not None:
        raise oidc.SignInRefused(f"The identity provider refused the sign-in ({error}).")
    if not code or not state:
        raise MalformedRequest("The provider's answer has no code or no state.")
    tenant = await _live_tenant(db, slug)
    async with db.tenant(tenant.id) as session:
        conn = await oidc.connection(session, tenant=tenant, secrets_key=app.oidc_secrets_key)
        pending = await oidc.take(
            session, conn=conn, state=state, browser=request.cookies.get(COOKIE)
        )
    try:
        async with app.egress_gate.slot(conn.tenant_id):
            metadata = await app.oidc_providers.metadata(conn.issuer)
            tokens = await app.oidc_providers.redeem(
                metadata,
                client_id=conn.client_id,
                client_secret=conn.client_secret,
                code=code,
                code_verifier=pending.code_verifier,
                redirect_uri=pending.redirect_uri,
            )
            claims = await app.oidc_providers.verify(
                metadata, tokens, issuer=conn.issuer, client_id=conn.client_id, nonce=pending.nonce
            )
    except TokenRejected as rejected:
        raise oidc.SignInRefused(f"The sign-in was refused: {rejected}.") from rejected
    except EgressError as failed:
        raise problem(failed, what=PROVIDER) from failed
    attempt = oidc.sign_in_from(conn, claims)
    quota = (await policy_of(request, conn.tenant_id)).limits.users
    live = await _live_tenant(db, slug)
    async with db.tenant(live.id) as session:
        current = await oidc.connection(session, tenant=live, secrets_key=app.oidc_secrets_key)
        if current.issuer != conn.issuer or live.id != conn.tenant_id:
            raise oidc.SignInRefused("The tenant's identity provider changed during this sign-in.")
        if live.status == "suspended":
            return Outcome(failure="tenant-suspended")
        return await sign_in(
            session,
            tenant=live,
            attempt=attempt,
            by=current.by,
            users_quota=quota,
            settings=settings,
            key=app.signing_key,
        )


@router.get(
    "/v1/auth/oidc/{tenant}/start",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={302: {"description": "To the tenant's identity provider."}},
    **guard(PUBLIC, 504),
)
async def start(tenant: SlugRef, request: Request, db: Db, settings: Config) -> RedirectResponse:
    return await begin(request, db, settings, slug=tenant, callback=callback_path(tenant))


@router.get(
    "/v1/auth/oidc/{tenant}/callback",
    response_model=TokenOut,
    response_model_exclude_none=True,
    **guard(PUBLIC, 400, 401, 403, 409, 504),
)
async def callback(
    tenant: SlugRef, request: Request, db: Db, settings: Config, answer: Answer
) -> TokenOut:
    return answer_of(await finish(request, db, settings, slug=tenant, answer=answer))


@router.get("/v1/sso/oidc", response_model=OidcConfigOut, **guard(Permission.SSO_MANAGE, 404))
async def show_oidc(subject: Caller, db: Db, request: Request, settings: Config) -> OidcConfigOut:
    async with db.tenant(subject.tenant.id) as session:
        config = await oidc.get_config(session, tenant_id=subject.tenant.id)
        return _out(config, request, settings, subject.tenant.slug)


@router.put("/v1/sso/oidc", response_model=OidcConfigOut, **guard(Permission.SSO_MANAGE))
async def put_oidc(
    body: OidcConfigIn, subject: Caller, db: Db, request: Request, settings: Config, policy: Policy
) -> OidcConfigOut:
    oidc.check_issuer(policy, body.issuer)
    async with db.tenant(subject.tenant.id) as session:
        config = await oidc.put_config(
            session,
            tenant_id=subject.tenant.id,
            data=body,
            actor=subject,
            secrets_key=request.app.state.oidc_secrets_key,
        )
        return _out(config, request, settings, subject.tenant.slug)


@router.delete(
    "/v1/sso/oidc", status_code=status.HTTP_204_NO_CONTENT, **guard(Permission.SSO_MANAGE, 404)
)
async def delete_oidc(subject: Caller, db: Db) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await oidc.delete_config(session, tenant_id=subject.tenant.id, actor=subject.audit_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _out(config, request: Request, settings: Settings, slug: str) -> OidcConfigOut:
    return OidcConfigOut(
        **oidc.public(config),
        redirect_uri=redirect_uri(request, settings, slug),
        updated_at=config.updated_at,
    )
