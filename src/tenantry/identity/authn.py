"""Resolve a request's credential to a subject; the middleware calls this once per request.

A tenant's user or API key is read fresh from the database on every request, so a revoked key, a
disabled or demoted user, a suspended tenant or a revoked session takes effect on the next request
in every process. An API key is read with its creator, whose role now caps it: a key whose creator
was demoted can do only what they still may, and one whose creator was disabled or removed does
nothing. That read is one statement in one round trip (BEGIN, the tenant, the lookup and
COMMIT pipelined on the driver), without the ORM: it is the most frequent query of the platform.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.types import Scope

from tenantry.db.session import Database
from tenantry.errors import Forbidden, TenantRestoring, TenantSuspended
from tenantry.identity import access_tokens, operators
from tenantry.identity.credentials import (
    Credential,
    credential_of,
    parse,
    refusal_of,
    refuse,
)
from tenantry.identity.tokens import API_KEY_PREFIX, TenantSecret, digest, same_digest
from tenantry.tenancy.context import TenantRef
from tenantry.tenancy.subjects import Subject

# Whether a restore is swapping the tenant's rows now (a partial index keeps it cheap).
RESTORING = """EXISTS (SELECT 1 FROM restores x
               WHERE x.tenant = t.id AND x.status = 'running' AND x.stage = 'swapping')"""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Tenant columns first in both lookups: slug, tier, status; whether it is restoring last.
API_KEY_LOOKUP = f"""
SELECT t.slug, t.tier, t.status, k.id, k.name, k.key_hash, k.scopes, k.revoked_at, k.expires_at,
       k.last_used_at, u.id, u.role, u.status, {RESTORING}
FROM tenants t
LEFT JOIN api_keys k ON k.tenant_id = t.id AND k.lookup = %s
LEFT JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.created_by_user_id
WHERE t.id = %s
"""
USER_LOOKUP = f"""
SELECT t.slug, t.tier, t.status, u.email, u.role, u.status,
       EXISTS (SELECT 1 FROM refresh_tokens r
               WHERE r.tenant_id = u.tenant_id AND r.family_id = %s AND r.revoked_at IS NOT NULL),
       {RESTORING}
FROM users u JOIN tenants t ON t.id = u.tenant_id
WHERE u.tenant_id = %s AND u.id = %s
"""
# At most once a minute per key, so authenticating is not a write on every request.
TOUCH_API_KEY = """
UPDATE api_keys SET last_used_at = now()
WHERE tenant_id = %s AND id = %s AND (last_used_at IS NULL OR last_used_at < now() - interval '60 s')
"""
GONE = ("deleting", "deleted")


class UserDisabled(Forbidden):
    code, title = "user-disabled", "User disabled"


def _working_tenant(
    tenant_id, slug: str, tier: str, status: str, *, restoring: bool, scope: Scope
) -> TenantRef:
    """The tenant of a credential, refused when it may not work right now: suspended, or (for
    a write) while a restore swaps its rows, which the write would otherwise wait for and then
    miss (an update of a row the swap deleted and inserted again finds nothing to update)."""
    if status == "suspended":
        raise TenantSuspended(f"Tenant '{slug}' is suspended.")
    if restoring and scope.get("method") not in SAFE_METHODS:
        raise TenantRestoring(f"Tenant '{slug}' is being restored from a backup; retry shortly.")
    return TenantRef(id=tenant_id, slug=slug, tier=tier)


class Authenticator:
    """Reads the database and key from the app state, so it can be built before the app starts."""

    def __init__(self, state) -> None:
        self.state = state

    async def __call__(self, scope: Scope) -> Subject | None:
        credential = credential_of(scope, self.state.signing_key)
        if credential is None:
            return None
        subject = await self._resolve(scope, credential)
        if subject is None:
            refuse(scope, refusal_of(credential, self.state.signing_key))
        return subject

    async def subject_of(self, token: str) -> Subject | None:
        """Whom a bare token stands for, exactly as a request bearing it is authenticated."""
        return await self._resolve({}, parse(token, self.state.signing_key))

    async def _resolve(self, scope: Scope, credential: Credential) -> Subject | None:
        db: Database = self.state.db
        if credential.api_key is not None:
            return await self._api_key(db, credential.api_key, scope)
        if credential.is_jwt:
            claims = credential.claims
            if claims is None:
                return None
            if claims.kind == "operator":
                async with db.control() as session:
                    return await operators.authenticate_jwt(session, operator_id=claims.subject_id)
            return await self._user(db, claims, scope)
        return await self._opaque(db, credential)

    @staticmethod
    async def _opaque(db: Database, credential: Credential) -> Subject | None:
        # Operator tokens usually carry their prefix, but one set by TENANTRY_BOOTSTRAP_TOKEN
        # may not: anything unrecognised is looked up as an operator token. A malformed API
        # key (its prefix, not its shape) is nobody.
        if credential.token.startswith(API_KEY_PREFIX):
            return None
        async with db.control() as session:
            return await operators.authenticate_token(session, token=credential.token)

    @staticmethod
    async def _user(
        db: Database, claims: access_tokens.AccessClaims, scope: Scope
    ) -> Subject | None:
        if claims.tenant_id is None or claims.session_id is None:
            return None
        rows = await db.run_once(
            claims.tenant_id, USER_LOOKUP, (claims.session_id, claims.tenant_id, claims.subject_id)
        )
        if not rows:
            return None
        slug, tier, tenant_status, email, role, status, revoked, restoring = rows[0]
        if revoked or tenant_status in GONE:
            return None
        tenant = _working_tenant(
            claims.tenant_id, slug, tier, tenant_status, restoring=restoring, scope=scope
        )
        if status != "active":
            raise UserDisabled("This user is disabled.")
        return Subject(
            kind="user",
            id=claims.subject_id,
            name=email,
            tenant=tenant,
            role=role,
            session_id=claims.session_id,
        )

    @staticmethod
    async def _api_key(db: Database, parsed: TenantSecret, scope: Scope) -> Subject | None:
        rows = await db.run_once(
            parsed.tenant_id, API_KEY_LOOKUP, (parsed.lookup, parsed.tenant_id)
        )
        if not rows:
            return None
        row = rows[0]
        slug, tier, tenant_status, key_id, name, key_hash, scopes, revoked, expires, used = row[:10]
        creator_id, creator_role, creator_status, restoring = row[10:]
        if key_id is None or tenant_status in GONE:
            return None
        if not same_digest(key_hash, digest(parsed.secret)):
            return None
        now = datetime.now(UTC)
        if revoked is not None:
            refuse(scope, "The API key was revoked")
            return None
        if expires is not None and expires <= now:
            refuse(scope, "The API key expired")
            return None
        if creator_id is None or creator_status != "active":
            refuse(scope, "The API key is disabled with its creator")
            return None
        tenant = _working_tenant(
            parsed.tenant_id, slug, tier, tenant_status, restoring=restoring, scope=scope
        )
        if used is None or (now - used).total_seconds() > 60:
            await db.run_once(parsed.tenant_id, TOUCH_API_KEY, (parsed.tenant_id, key_id))
        return Subject(
            kind="api_key",
            id=key_id,
            name=name,
            tenant=tenant,
            scopes=frozenset(scopes),
            creator_id=creator_id,
            creator_role=creator_role,
        )
