"""The console's session: a signed cookie that carries the caller's own API tokens.

No server-side session store of our own: the cookie holds the access token (and, for tenant
users, the refresh token) that a login through the API would have handed out, signed with the
platform's key so that nothing in it can be changed. Every request then authenticates exactly as
an API request does (a revoked session, a disabled user or a suspended tenant takes effect on the
next page), and logging out revokes the user's session family as `/v1/auth/logout` does.

The cookie is HttpOnly, SameSite=Lax, Secure when the console is served over HTTPS, and limited to
`/console`. It also carries a random CSRF token, which every unsafe request must echo (a form
field or the `X-CSRF-Token` header htmx sends).

A session ends `SESSION_HOURS` after sign-in. A tenant user's access token is renewed with the
refresh token; an operator's session holds a revocable operator token of that same lifetime
(operators have no refresh tokens), which logout revokes.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import jwt
from starlette.requests import HTTPConnection
from starlette.types import Scope

from tenantry.errors import Forbidden

COOKIE = "tenantry_console"
PATH = "/console"
ISSUER = "tenantry-console"
ALGORITHM = "HS256"
SESSION_HOURS = 12
ANONYMOUS_MINUTES = 60  # a sign-in form's CSRF token
SCOPE_KEY = "tenantry.console_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Kind = Literal["anonymous", "user", "operator"]


class CsrfRefused(Forbidden):
    code, title = "csrf-token-invalid", "Form expired or forged"


@dataclass(frozen=True)
class ConsoleSession:
    kind: Kind
    csrf: str
    expires_at: int  # epoch seconds
    access_token: str | None = None
    refresh_token: str | None = None
    tenant: str | None = None  # the slug signed in to, to offer it again after sign-out

    @property
    def signed_in(self) -> bool:
        return self.kind != "anonymous" and self.access_token is not None

    def with_tokens(self, access_token: str, refresh_token: str | None) -> ConsoleSession:
        return replace(self, access_token=access_token, refresh_token=refresh_token)


def anonymous() -> ConsoleSession:
    return ConsoleSession(
        kind="anonymous",
        csrf=secrets.token_urlsafe(32),
        expires_at=int(time.time()) + ANONYMOUS_MINUTES * 60,
    )


def signed_in(
    *,
    kind: Kind,
    access_token: str,
    access_seconds: int,
    refresh_token: str | None,
    tenant: str | None,
) -> ConsoleSession:
    """A new session after a sign-in: a fresh CSRF token (never the anonymous one)."""
    lifetime = SESSION_HOURS * 3600
    if refresh_token is None:  # nothing to renew the access token with
        lifetime = min(lifetime, access_seconds)
    return ConsoleSession(
        kind=kind,
        csrf=secrets.token_urlsafe(32),
        expires_at=int(time.time()) + lifetime,
        access_token=access_token,
        refresh_token=refresh_token,
        tenant=tenant,
    )


def encode(session: ConsoleSession, key: str) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "kind": session.kind,
        "csrf": session.csrf,
        "exp": session.expires_at,
    }
    if session.access_token:
        claims["acc"] = session.access_token
    if session.refresh_token:
        claims["ref"] = session.refresh_token
    if session.tenant:
        claims["tenant"] = session.tenant
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode(value: str | None, key: str) -> ConsoleSession | None:
    """The session a cookie carries; None when absent, forged or past its expiry."""
    if not value:
        return None
    try:
        claims = jwt.decode(
            value, key, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp"]}
        )
        return ConsoleSession(
            kind=claims["kind"],
            csrf=claims["csrf"],
            expires_at=int(claims["exp"]),
            access_token=claims.get("acc"),
            refresh_token=claims.get("ref"),
            tenant=claims.get("tenant"),
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None


def cookie_header(session: ConsoleSession | None, key: str, *, secure: bool) -> str:
    """A `Set-Cookie` value: the session, or its removal when `session` is None."""
    attributes = [f"Path={PATH}", "HttpOnly", "SameSite=Lax"]
    if secure:
        attributes.append("Secure")
    if session is None:
        return "; ".join([f"{COOKIE}=", "Max-Age=0", *attributes])
    max_age = max(0, session.expires_at - int(time.time()))
    return "; ".join([f"{COOKIE}={encode(session, key)}", f"Max-Age={max_age}", *attributes])


def current(connection: HTTPConnection | Scope) -> ConsoleSession | None:
    """The session the gateway read for this request (None: no valid cookie)."""
    scope = connection.scope if isinstance(connection, HTTPConnection) else connection
    return scope.get(SCOPE_KEY)


def csrf_matches(session: ConsoleSession | None, given: str | None) -> bool:
    if session is None or not given:
        return False
    return hmac.compare_digest(session.csrf.encode(), given.encode())


PENDING_KEY = "tenantry.console_session_set"
CLEAR = object()


def replace_session(connection: HTTPConnection, session: ConsoleSession | None) -> None:
    """Have the gateway set (or, with None, remove) the session cookie on this response."""
    connection.scope[PENDING_KEY] = CLEAR if session is None else session
    connection.scope[SCOPE_KEY] = session
