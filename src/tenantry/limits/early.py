"""Refuse a tenant that is already past its request rate before authenticating it.

Authenticating costs a database transaction; a tenant flooding the platform would otherwise make
every refused request cost that much, on the event loop every other tenant shares. The credential
names its tenant (an API key's prefix, a JWT's signed claim), and the tenant's window is only read,
never counted, so a forged credential cannot spend anyone's quota.
"""

from __future__ import annotations

import uuid

from starlette.datastructures import Headers
from starlette.types import Scope

from tenantry.identity import access_tokens
from tenantry.identity.authn import bearer_token
from tenantry.identity.tokens import API_KEY_PREFIX, parse_tenant_secret
from tenantry.limits.middleware import QuotaExceeded
from tenantry.observability.metrics import RATE_LIMITED


def tenant_named_by(scope: Scope, signing_key: str) -> uuid.UUID | None:
    headers = Headers(scope=scope)
    token = headers.get("x-api-key") or bearer_token(headers)
    if not token:
        return None
    if token.startswith(API_KEY_PREFIX):
        parsed = parse_tenant_secret(API_KEY_PREFIX, token)
        return parsed.tenant_id if parsed else None
    if access_tokens.looks_like_jwt(token):
        claims = access_tokens.decode(signing_key, token)
        return claims.tenant_id if claims else None
    return None


class EarlyRefusal:
    def __init__(self, state) -> None:
        self.state = state

    async def __call__(self, scope: Scope) -> None:
        tenant_id = tenant_named_by(scope, self.state.signing_key)
        if tenant_id is None:
            return
        policy = self.state.policies.cached(tenant_id)
        if policy is None:  # not seen yet in this process: the normal path will load it
            return
        decision = await self.state.rates.peek(
            policy="default",
            tenant_key=str(tenant_id),
            per_minute=policy.limits.requests_per_minute,
        )
        if not decision.allowed:
            RATE_LIMITED.labels(policy.tier, "default").inc()
            raise QuotaExceeded(
                f"The tenant's limit of {decision.quota} requests a minute is reached.",
                headers={**decision.headers(), "Retry-After": str(max(1, decision.reset_seconds))},
            )
