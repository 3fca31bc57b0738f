"""Outbound calls in flight per tenant, capped: a tenant whose directory or webhook receiver
never answers holds at most `per_tenant` of them, and the next one is refused at once instead
of waiting, so it can take neither the database pool, nor the threads, nor other tenants' turns.

Leases come from the limits backend (Redis shared by every API process, or this process's
memory), and expire on their own if a process dies holding one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from tenantry.egress.policy import EgressError


class Leases(Protocol):
    async def acquire(
        self, key: str, limit: int, *, seconds: float | None = None
    ) -> str | None: ...
    async def release(self, key: str, lease: str) -> None: ...


class EgressBusy(EgressError):
    """The tenant already has as many outbound calls in flight as it may."""


class EgressGate:
    def __init__(self, leases: Leases, *, per_tenant: int, lease_seconds: float = 120) -> None:
        self.leases = leases
        self.per_tenant = per_tenant
        self.lease_seconds = lease_seconds

    @asynccontextmanager
    async def slot(self, tenant_id: object) -> AsyncIterator[None]:
        key = f"egress:{tenant_id}"
        lease = await self.leases.acquire(key, self.per_tenant, seconds=self.lease_seconds)
        if lease is None:
            raise EgressBusy(f"this tenant already has {self.per_tenant} outbound calls in flight")
        try:
            yield
        finally:
            await self.leases.release(key, lease)
