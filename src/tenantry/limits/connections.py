"""Each tenant's share of an API process's database connections, from its tier.

A tenant with many slow requests waits on its own semaphore instead of holding the whole pool,
so other tenants still find connections free.
"""

from __future__ import annotations

import asyncio
import math
import uuid

from tenantry.tenancy.context import current_tenant_or_none
from tenantry.tenants.tiers import TIERS


class ConnectionShares:
    def __init__(self, pool_capacity: int) -> None:
        self.pool_capacity = pool_capacity
        self._slots: dict[tuple[uuid.UUID, str], asyncio.Semaphore] = {}

    def size_for(self, tier: str) -> int:
        return max(1, math.floor(self.pool_capacity * TIERS[tier].db_connection_share))

    def __call__(self, tenant_id: uuid.UUID) -> asyncio.Semaphore | None:
        tenant = current_tenant_or_none()
        if tenant is None or tenant.id != tenant_id:
            return None  # control-plane work on a tenant's behalf is not capped
        key = (tenant_id, tenant.tier)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.size_for(tenant.tier))
        return slot
