"""Per-tenant SLOs, computed by the app itself (seed 001, phase 4).

Prometheus is not part of the app, and a process sees only its own requests, so every API process
counts each tenant's requests per hour (total, 5xx, and a latency histogram of the others with
the same buckets as `tenantry_http_request_duration_seconds`) and adds them to `slo_hourly` in
PostgreSQL every few seconds, one upsert per tenant. A report sums the hours of each rolling
window (the current hour included, so a window of N hours covers N to N+1 hours) and compares
availability and the share within the tier's latency threshold with the tier's objectives; p95 is
interpolated within its bucket, as Prometheus' histogram_quantile does. Counts not yet written
when a process is killed are lost: a report is a measure, not a ledger.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta

import structlog
from pydantic import BaseModel
from sqlalchemy import text

from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.observability.metrics import LATENCY_BUCKETS
from tenantry.observability.objectives import OBJECTIVES

log = structlog.get_logger("tenantry.slo")
WINDOWS = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
WINDOWS["30d"] = timedelta(days=30)
UPSERT = text(
    "INSERT INTO slo_hourly (tenant_id, hour, name, value) VALUES (:tenant_id, :hour, :name, :value) "
    "ON CONFLICT (tenant_id, hour, name) DO UPDATE SET value = slo_hourly.value + EXCLUDED.value"
)
READ = text(
    "SELECT hour, name, value FROM slo_hourly WHERE tenant_id = :tenant_id AND hour >= :since"
)
Key = tuple[uuid.UUID, datetime, str]


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _bucket(seconds: float) -> int:
    for index, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKETS)


class SloMeter:
    """This process's counts not yet in PostgreSQL."""

    def __init__(self) -> None:
        self._pending: Counter[Key] = Counter()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _one_flush_at_a_time(self) -> asyncio.Lock:
        """A flush's counts are out of `_pending` until it commits: a report that flushed while
        another flush was still writing would read without them, so flushes take turns (one
        lock per event loop: this meter is the process's)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def record(self, tenant_id: uuid.UUID, *, status: int, seconds: float) -> None:
        hour = _hour(utcnow())
        self._pending[(tenant_id, hour, "requests")] += 1
        if status >= 500:
            self._pending[(tenant_id, hour, "errors")] += 1
        else:
            self._pending[(tenant_id, hour, f"le:{_bucket(seconds)}")] += 1

    async def flush(self, db: Database, *, tenant_id: uuid.UUID | None = None) -> None:
        async with self._one_flush_at_a_time():
            await self._flush(db, tenant_id)

    async def _flush(self, db: Database, tenant_id: uuid.UUID | None) -> None:
        if tenant_id is None:
            pending, self._pending = self._pending, Counter()
        else:
            pending = Counter({k: v for k, v in self._pending.items() if k[0] == tenant_id})
            for key in pending:
                del self._pending[key]
        by_tenant: dict[uuid.UUID, list[dict]] = {}
        for (tid, hour, name), value in sorted(pending.items(), key=lambda i: (i[0][1], i[0][2])):
            by_tenant.setdefault(tid, []).append(
                {"tenant_id": tid, "hour": hour, "name": name, "value": value}
            )
        for tid, rows in by_tenant.items():
            try:
                async with db.tenant(tid) as session:
                    await session.execute(UPSERT, rows)
            except Exception as error:  # kept for the next flush
                log.warning("slo flush failed", tenant_id=str(tid), error=type(error).__name__)
                for row in rows:
                    self._pending[(tid, row["hour"], row["name"])] += row["value"]

    async def run(self, db: Database, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush(db)


# One per process, like the metrics registry: the request path records without any state.
SLO_METER = SloMeter()


class SloWindow(BaseModel):
    window: str
    requests: int
    errors: int
    availability: float | None  # share answered without a 5xx; None without requests
    within_latency: float | None  # share of the others answered within the tier's threshold
    p95_seconds: float | None
    meets_availability: bool | None
    meets_latency: bool | None
    error_budget_left: float | None  # of the availability budget, over this window


class SloObjective(BaseModel):
    availability: float
    latency: float
    latency_seconds: float


class SloOut(BaseModel):
    tenant: str
    tier: str
    objective: SloObjective
    windows: list[SloWindow]


def p95(buckets: list[int]) -> float | None:
    total = sum(buckets)
    if not total:
        return None
    rank, seen = 0.95 * total, 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(LATENCY_BUCKETS):  # beyond the last bound: that bound, as Prometheus
                return LATENCY_BUCKETS[-1]
            lower = LATENCY_BUCKETS[index - 1] if index else 0.0
            upper = LATENCY_BUCKETS[index]
            return round(lower + (upper - lower) * (rank - seen) / count, 4)
        seen += count
    return LATENCY_BUCKETS[-1]


def window_of(name: str, rows: list[tuple[datetime, str, int]], since: datetime, tier: str):
    objective = OBJECTIVES[tier]
    counts: Counter[str] = Counter()
    for hour, key, value in rows:
        if hour >= since:
            counts[key] += value
    requests, errors = counts["requests"], counts["errors"]
    buckets = [counts[f"le:{i}"] for i in range(len(LATENCY_BUCKETS) + 1)]
    answered = sum(buckets)
    threshold = LATENCY_BUCKETS.index(objective.latency_seconds)
    availability = (1 - errors / requests) if requests else None
    within = sum(buckets[: threshold + 1]) / answered if answered else None
    budget = objective.error_budget
    return SloWindow(
        window=name,
        requests=requests,
        errors=errors,
        availability=availability,
        within_latency=within,
        p95_seconds=p95(buckets),
        meets_availability=None if availability is None else availability >= objective.availability,
        meets_latency=None if within is None else within >= objective.latency,
        error_budget_left=None if availability is None else 1 - (1 - availability) / budget,
    )


async def report(db: Database, *, tenant_id: uuid.UUID, slug: str, tier: str) -> SloOut:
    await SLO_METER.flush(db, tenant_id=tenant_id)  # what this process counted, included
    now = _hour(utcnow())
    oldest = now - max(WINDOWS.values())
    async with db.tenant(tenant_id) as session:
        rows = [
            tuple(r) for r in await session.execute(READ, {"tenant_id": tenant_id, "since": oldest})
        ]
    objective = OBJECTIVES[tier]
    return SloOut(
        tenant=slug,
        tier=tier,
        objective=SloObjective(
            availability=objective.availability,
            latency=objective.latency,
            latency_seconds=objective.latency_seconds,
        ),
        windows=[window_of(name, rows, now - span, tier) for name, span in WINDOWS.items()],
    )
