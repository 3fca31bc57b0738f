"""Signing in to the console with the tenant's OpenID provider.

The same flow as `/v1/auth/oidc/{tenant}/start` and `/callback` (`identity.oidc_api.begin` and
`finish`: PKCE, state and nonce, allowed domains, roles from claims, the same audit events), with
the console's own callback, whose answer is a console session rather than the tokens as JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tenantry.api_types import SlugRef
from tenantry.console import auth
from tenantry.console import session as sessions
from tenantry.console.common import Config, Db
from tenantry.errors import AppError
from tenantry.identity import oidc_api
from tenantry.identity.api import answer_of
from tenantry.identity.dependencies import PUBLIC, guard

router = APIRouter(prefix="/oidc/{tenant}")


def callback_path(slug: str) -> str:
    return f"/console/oidc/{slug}/callback"


@router.get("/start", **guard(PUBLIC))
async def start(tenant: SlugRef, request: Request, db: Db, settings: Config) -> Response:
    return await oidc_api.begin(request, db, settings, slug=tenant, callback=callback_path(tenant))


@router.get("/callback", **guard(PUBLIC))
async def callback(
    tenant: SlugRef, request: Request, db: Db, settings: Config, answer: oidc_api.Answer
) -> Response:
    """A console session for the signed-in user; a refusal is shown on the sign-in page."""
    try:
        outcome = await oidc_api.finish(request, db, settings, slug=tenant, answer=answer)
        tokens = answer_of(outcome)
    except AppError as refused:
        return await auth.refused(request, db, tenant=tenant, error=refused)
    session = sessions.signed_in(
        kind="user",
        access_token=tokens.access_token,
        access_seconds=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        tenant=tenant,
    )
    sessions.replace_session(request, session)
    response = RedirectResponse("/console", status_code=303)
    response.delete_cookie(oidc_api.COOKIE, path=callback_path(tenant))  # spent
    return response
