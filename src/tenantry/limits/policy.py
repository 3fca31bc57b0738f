"""A tenant's policy as the request path needs it: status, tier, effective limits and config.

Loaded in one tenant transaction and cached per process under `{prefix}:{tenant}:policy`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tenantry.config import service as config_service
from tenantry.config.cache import PrefixCache, cache_key
from tenantry.config.service import Effective
from tenantry.db.session import Database
from tenantry.errors import NotFound
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import TIERS, Limits, TierTemplate, effective_limits


@dataclass(frozen=True)
class TenantPolicy:
    tenant_id: uuid.UUID
    slug: str
    tier: str
    cache_prefix: str
    operator_limits: Limits  # the tier's, with the operator's overrides
    limits: Limits  # what applies: the above, lowered where the tenant asked
    effective: Effective  # the configuration, its sources and versions

    @property
    def config(self) -> dict[str, Any]:
        return self.effective.config

    @property
    def template(self) -> TierTemplate:
        return TIERS[self.tier]


class PolicyStore:
    def __init__(self, db: Database, cache: PrefixCache) -> None:
        self.db = db
        self.cache = cache
        self._prefixes: dict[uuid.UUID, str] = {}

    async def get(self, tenant_id: uuid.UUID) -> TenantPolicy:
        prefix = self._prefixes.get(tenant_id)
        if prefix is not None:
            return await self.cache.get(cache_key(prefix, "policy"), lambda: self._load(tenant_id))
        # The key needs the tenant's prefix, which the first load tells.
        generation = self.cache.generation
        policy = await self._load(tenant_id)
        self._prefixes[tenant_id] = policy.cache_prefix
        self.cache.put(cache_key(policy.cache_prefix, "policy"), policy, generation=generation)
        return policy

    def cached(self, tenant_id: uuid.UUID) -> TenantPolicy | None:
        """The policy if this process holds it now; never touches the database."""
        prefix = self._prefixes.get(tenant_id)
        return self.cache.peek(cache_key(prefix, "policy")) if prefix else None

    async def _load(self, tenant_id: uuid.UUID) -> TenantPolicy:
        async with self.db.tenant(tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound("No such tenant.")
            eff = await config_service.effective(session, tenant_id=tenant_id, tier=tenant.tier)
        return build_policy(tenant, eff)


def build_policy(tenant: Tenant, eff: Effective) -> TenantPolicy:
    operator_limits = effective_limits(tenant.tier, tenant.limit_overrides)
    lowered = {
        k: min(v, getattr(operator_limits, k))
        for k, v in eff.config["limits"].items()
        if v is not None
    }
    return TenantPolicy(
        tenant_id=tenant.id,
        slug=tenant.slug,
        tier=tenant.tier,
        cache_prefix=tenant.cache_prefix,
        operator_limits=operator_limits,
        limits=operator_limits.model_copy(update=lowered),
        effective=eff,
    )
