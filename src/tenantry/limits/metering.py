"""Usage metering: counters per tenant and day, kept in memory and added to PostgreSQL in batches."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date

import structlog
from sqlalchemy import text

from tenantry.db.base import utcnow
from tenantry.db.session import Database

log = structlog.get_logger("tenantry.usage")

UPSERT = text(
    "INSERT INTO usage_daily (tenant_id, day, metric, value) VALUES (:tenant_id, :day, :metric, :value) "
    "ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = usage_daily.value + EXCLUDED.value"
)


class UsageMeter:
    def __init__(self) -> None:
        self._pending: Counter[tuple[uuid.UUID, date, str]] = Counter()

    def add(self, tenant_id: uuid.UUID, metric: str, amount: int = 1) -> None:
        self._pending[(tenant_id, utcnow().date(), metric)] += amount

    async def flush(self, db: Database, *, tenant_id: uuid.UUID | None = None) -> int:
        """Write what was counted (for one tenant, or all); on failure the counts are kept."""
        if tenant_id is None:
            pending, self._pending = self._pending, Counter()
        else:
            pending = Counter({k: v for k, v in self._pending.items() if k[0] == tenant_id})
            for key in pending:
                del self._pending[key]
        by_tenant: dict[uuid.UUID, list[dict]] = {}
        for (tenant_id, day, metric), value in pending.items():
            by_tenant.setdefault(tenant_id, []).append(
                {"tenant_id": tenant_id, "day": day, "metric": metric, "value": value}
            )
        for tenant_id, rows in by_tenant.items():
            try:
                async with db.tenant(tenant_id) as session:
                    await session.execute(UPSERT, rows)
            except Exception:
                log.exception("usage flush failed", tenant_id=str(tenant_id))
                for row in rows:
                    self._pending[(row["tenant_id"], row["day"], row["metric"])] += row["value"]
        return sum(pending.values())

    async def run(self, db: Database, interval: float) -> None:
        try:
            while True:
                await asyncio.sleep(interval)
                await self.flush(db)
        finally:
            await self.flush(db)
