"""The credential a request presents, read once per request.

The early rate check and authentication both need it; a JWT is verified here once and the result
kept in the ASGI scope, so the second reader pays nothing.

Accepted: `Authorization: Bearer <access JWT | API key | operator token>` and `X-API-Key: <key>`.

A refused credential gets an RFC 6750 answer a client can act on: `error="invalid_token"` with
why (an expired access token: refresh it; anything else: log in again), and no error at all when
no credential was sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

from tenantry.errors import Unauthorized
from tenantry.identity import access_tokens
from tenantry.identity.tokens import API_KEY_PREFIX, TenantSecret, parse_tenant_secret

SCOPE_KEY = "tenantry.credential"
REFUSAL_KEY = "tenantry.credential_refused"
INVALID = "The credential is not valid"
EXPIRED = "The access token expired"


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    api_key: TenantSecret | None = None  # a well-formed API key
    is_jwt: bool = False
    claims: access_tokens.AccessClaims | None = None  # a JWT's, when it verified

    @property
    def tenant_id(self) -> uuid.UUID | None:
        """The tenant the credential names; not yet proof that it may act for it."""
        if self.api_key is not None:
            return self.api_key.tenant_id
        return self.claims.tenant_id if self.claims is not None else None


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def credential_of(scope: Scope, signing_key: str) -> Credential | None:
    """The request's credential, parsed (and a JWT verified) on the first call only."""
    if SCOPE_KEY in scope:
        return scope[SCOPE_KEY]
    credential = _read(Headers(scope=scope), signing_key)
    scope[SCOPE_KEY] = credential
    return credential


def _read(headers: Headers, signing_key: str) -> Credential | None:
    token = headers.get("x-api-key") or bearer_token(headers)
    if not token:
        return None
    return parse(token, signing_key)


def parse(token: str, signing_key: str) -> Credential:
    """What kind of credential `token` is (an API key, a JWT, verified, or an opaque token)."""
    if token.startswith(API_KEY_PREFIX):
        return Credential(token, api_key=parse_tenant_secret(API_KEY_PREFIX, token))
    if access_tokens.looks_like_jwt(token):
        return Credential(token, is_jwt=True, claims=access_tokens.decode(signing_key, token))
    return Credential(token)


def refuse(scope: Scope, reason: str) -> None:
    """Remember why the request's credential was refused (the first reason given stands)."""
    scope.setdefault(REFUSAL_KEY, reason)


def unauthorized(scope: Scope) -> Unauthorized:
    """The 401 for a request without a subject, with its `WWW-Authenticate` challenge."""
    if scope.get(SCOPE_KEY) is None:
        return Unauthorized()
    reason = scope.get(REFUSAL_KEY, INVALID)
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    return Unauthorized(f"{reason}.", headers={"WWW-Authenticate": challenge})


def refusal_of(credential: Credential, signing_key: str) -> str:
    """Why a presented credential that resolved to nobody was refused."""
    expired = (
        credential.is_jwt
        and credential.claims is None
        and access_tokens.expired(signing_key, credential.token)
    )
    return EXPIRED if expired else INVALID
