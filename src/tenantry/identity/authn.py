"""Resolve a request's credential to a subject; the middleware calls this once per request.

Accepted: `Authorization: Bearer <access JWT | API key | operator token>` and `X-API-Key: <key>`.
A user's role and status are read fresh from the database, so a demotion or a disabled account
takes effect on the next request, not when the token expires.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from starlette.datastructures import Headers
from starlette.types import Scope

from tenantry.db.session import Database
from tenantry.errors import Forbidden, TenantSuspended
from tenantry.identity import access_tokens, api_keys, operators
from tenantry.identity.models import RefreshToken, User
from tenantry.identity.tokens import API_KEY_PREFIX, parse_tenant_secret
from tenantry.tenancy.context import TenantRef
from tenantry.tenancy.subjects import Subject
from tenantry.tenants.models import Tenant


class UserDisabled(Forbidden):
    code, title = "user-disabled", "User disabled"


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def tenant_ref(tenant: Tenant) -> TenantRef:
    """The tenant of a credential, refused when it may not work right now."""
    if tenant.status == "suspended":
        raise TenantSuspended(f"Tenant '{tenant.slug}' is suspended.")
    return TenantRef(id=tenant.id, slug=tenant.slug, tier=tenant.tier)


class Authenticator:
    """Reads the database and key from the app state, so it can be built before the app starts."""

    def __init__(self, state) -> None:
        self.state = state

    async def __call__(self, scope: Scope) -> Subject | None:
        headers = Headers(scope=scope)
        token = headers.get("x-api-key") or bearer_token(headers)
        if not token:
            return None
        db: Database = self.state.db
        if token.startswith(API_KEY_PREFIX):
            return await self._api_key(db, token)
        if access_tokens.looks_like_jwt(token):
            claims = access_tokens.decode(self.state.signing_key, token)
            if claims is None:
                return None
            if claims.kind == "operator":
                async with db.control() as session:
                    return await operators.authenticate_jwt(session, operator_id=claims.subject_id)
            return await self._user(db, claims)
        # Operator tokens usually carry their prefix, but one set by TENANTRY_BOOTSTRAP_TOKEN
        # may not: anything unrecognised is looked up as an operator token.
        async with db.control() as session:
            return await operators.authenticate_token(session, token=token)

    async def _user(self, db: Database, claims: access_tokens.AccessClaims) -> Subject | None:
        if claims.tenant_id is None or claims.session_id is None:
            return None
        revoked = exists().where(
            RefreshToken.tenant_id == claims.tenant_id,
            RefreshToken.family_id == claims.session_id,
            RefreshToken.revoked_at.is_not(None),
        )
        async with db.tenant(claims.tenant_id) as session:
            row = (
                await session.execute(
                    select(User, Tenant, revoked.label("revoked"))
                    .join(Tenant, Tenant.id == User.tenant_id)
                    .where(User.tenant_id == claims.tenant_id, User.id == claims.subject_id)
                )
            ).first()
        if row is None or row.revoked or row.Tenant.status in ("deleting", "deleted"):
            return None
        tenant = tenant_ref(row.Tenant)
        if row.User.status != "active":
            raise UserDisabled("This user is disabled.")
        return Subject(
            kind="user",
            id=row.User.id,
            name=row.User.email,
            tenant=tenant,
            role=row.User.role,
            session_id=claims.session_id,
        )

    async def _api_key(self, db: Database, token: str) -> Subject | None:
        parsed = parse_tenant_secret(API_KEY_PREFIX, token)
        if parsed is None:
            return None
        async with db.tenant(parsed.tenant_id) as session:
            tenant = await session.get(Tenant, parsed.tenant_id)
            if tenant is None or tenant.status in ("deleting", "deleted"):
                return None
            key = await api_keys.authenticate(
                session, tenant_id=parsed.tenant_id, lookup=parsed.lookup, secret=parsed.secret
            )
            if key is None:
                return None
            ref = tenant_ref(tenant)
        return Subject(
            kind="api_key", id=key.id, name=key.name, tenant=ref, scopes=frozenset(key.scopes)
        )
