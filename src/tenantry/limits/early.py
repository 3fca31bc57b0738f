"""Refuse a tenant that is already past its request rate before authenticating it.

Authenticating costs a database transaction; a tenant flooding the platform would otherwise make
every refused request cost that much, on the event loop every other tenant shares. The credential
names its tenant (an API key's prefix, a JWT's signed claim), and the tenant's window is only read,
never counted, so a forged credential cannot spend anyone's quota.
"""

from __future__ import annotations

from starlette.types import Scope

from tenantry.identity.credentials import credential_of
from tenantry.limits.middleware import QuotaExceeded
from tenantry.observability.metrics import RATE_LIMITED
from tenantry.observability.tenant_labels import tenant_label


class EarlyRefusal:
    def __init__(self, state) -> None:
        self.state = state

    async def __call__(self, scope: Scope) -> None:
        # Parsed once: authentication reads the same credential (a JWT is not verified twice).
        credential = credential_of(scope, self.state.signing_key)
        tenant_id = credential.tenant_id if credential else None
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
            RATE_LIMITED.labels(tenant_label(policy), policy.tier, "requests_per_minute").inc()
            raise QuotaExceeded(
                f"The tenant's limit of {decision.quota} requests a minute is reached.",
                headers={**decision.headers(), "Retry-After": str(max(1, decision.reset_seconds))},
            )
