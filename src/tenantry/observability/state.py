"""The metric families read at scrape time: the control plane's tenants and limits, and each
tenant's counts from `tenant_gauges()` (incidents, documents, sessions, workflows, outbox), read
in every cell (each holds its own tenants' rows) and merged.

They are read by the process that answers the scrape, from PostgreSQL, so they are the same
whichever process answers; the result is kept `metrics_state_seconds` so that frequent scrapes
(several Prometheus replicas) do not loop over every tenant each time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

import psycopg
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tenantry.db.session import Database
from tenantry.observability import components
from tenantry.observability.metrics import STATE, TIER_NAMES
from tenantry.observability.objectives import OBJECTIVES
from tenantry.observability.tenant_labels import OTHER, TENANTS
from tenantry.tenants import lifecycle_events
from tenantry.tenants.tiers import TIERS, effective_limits

log = structlog.get_logger("tenantry.metrics")
GAUGES = text("SELECT * FROM tenant_gauges()")
FAMILIES = {family.name: family for family in STATE}
# The outbox's own figures are read with the counts; every other component is checked.
DEPENDENCIES = tuple(name for name in components.CHECKS if name != "outbox")
STATUS_VALUE = {"ok": 1.0, "degraded": 0.5, "down": 0.0}


def running_version() -> str:
    try:
        return version("tenantry")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


class StateCollector:
    """A prometheus_client collector over the last reading (collect() cannot await).

    `state`: the app's state (its database, Temporal client, settings), for the health checks
    behind `tenantry_dependency_up`."""

    def __init__(self, state, *, ttl: float) -> None:
        self.state = state
        self.ttl = ttl
        self.metrics: list[Metric] = []
        self.outbox_pending = 0.0
        self.outbox_oldest_seconds = 0.0
        self.read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes and health checks share one reading
            if time.monotonic() - self.read_at < self.ttl:
                return
            counts = await read_counts(self.state.db)
            self.outbox_pending = counts["tenantry_outbox_pending"][()]
            self.outbox_oldest_seconds = counts["tenantry_outbox_oldest_pending_seconds"][()]
            found = await components.check_all(self.state, DEPENDENCIES)
            for component in found:
                name = component["name"]
                up = STATUS_VALUE.get(component["status"], 0.0)
                counts["tenantry_dependency_up"][(name,)] = up
                counts["tenantry_dependency_check_seconds"][(name,)] = (
                    component["latency_ms"] / 1000
                )
                if name == "workers":
                    for queue, view in (component.get("queues") or {}).items():
                        for kind in ("workflow", "activity"):
                            pollers = counts["tenantry_temporal_task_queue_pollers"]
                            backlog = counts["tenantry_temporal_task_queue_backlog"]
                            pollers[(queue, kind)] = view[kind]["pollers"]
                            backlog[(queue, kind)] = view[kind]["backlog"]
            self.metrics = families(counts)
            self.read_at = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        return iter(self.metrics)


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    family = FAMILIES[name]
    kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
    return kind(family.name, family.doc, labels=family.labels)


async def read_counts(db: Database) -> dict[str, defaultdict[tuple[str, ...], float]]:
    async with db.control() as session:
        tenants = (
            await session.execute(
                text("SELECT id, slug, tier, status, limit_overrides, cell FROM tenants")
            )
        ).all()
        gauges = [] if db.cells is not None else (await session.execute(GAUGES)).all()
        lifecycle = await lifecycle_events.totals(session)
    by_id = {row.id: row for row in tenants}
    if db.cells is not None:
        gauges = await _gauges_of_every_cell(db, {row.id: row.cell for row in tenants})

    counts: dict[str, defaultdict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
    for tier in TIER_NAMES:
        for status in ("active", "suspended", "deleted"):
            counts["tenantry_tenants"][(tier, status)] += 0
    for row in tenants:
        counts["tenantry_tenants"][(row.tier, row.status)] += 1
    oldest = 0.0
    for tenant_id, name, label, value in gauges:
        row = by_id[tenant_id]
        who = TENANTS.label(row.slug, row.tier, traffic=False)
        if name == "incidents":
            counts["tenantry_incidents"][(who, label)] += value
            if label == "awaiting_approval":
                counts["tenantry_incident_approvals_waiting"][(who,)] += value
        elif name == "documents":
            counts["tenantry_documents"][(who, label)] += value
        elif name == "active_sessions":
            counts["tenantry_active_sessions"][(who,)] += value
        elif name == "workflows_in_flight":
            counts["tenantry_workflows_in_flight"][(who,)] += value
        elif name == "outbox":
            counts["tenantry_outbox_pending"][()] += value
            if label == "queued":
                counts["tenantry_workflows_queued"][(who,)] += value
        elif name == "outbox_oldest_seconds":
            oldest = max(oldest, value)
    for name in (
        "tenantry_active_sessions",
        "tenantry_workflows_in_flight",
        "tenantry_workflows_queued",
        "tenantry_incident_approvals_waiting",
    ):
        counts[name][(OTHER,)] += 0  # the series exists even when nobody is counted
    counts["tenantry_outbox_pending"][()] += 0
    counts["tenantry_outbox_oldest_pending_seconds"][()] = oldest

    named = TENANTS.named()
    for row in tenants:
        if row.slug in named and row.status != "deleted":
            limits = effective_limits(row.tier, row.limit_overrides)
            for limit, value in limits.model_dump().items():
                counts["tenantry_tenant_limit"][(row.slug, limit)] = value
    for tier, template in TIERS.items():
        for limit, value in template.limits.model_dump().items():
            counts["tenantry_tier_limit"][(tier, limit)] = value
        objective = OBJECTIVES[tier]
        counts["tenantry_slo_objective"][(tier, "availability")] = objective.availability
        counts["tenantry_slo_objective"][(tier, "latency")] = objective.latency
        counts["tenantry_slo_latency_threshold_seconds"][(tier,)] = objective.latency_seconds
    counts["tenantry_build_info"][(running_version(),)] = 1
    for action in lifecycle_events.ACTIONS:
        counts["tenantry_tenant_lifecycle_events"][(action,)] = lifecycle.get(action, 0)
    return counts


async def _gauges_of_every_cell(db: Database, placed: dict[uuid.UUID, str]) -> list[tuple]:
    """`tenant_gauges()` of every cell, each tenant's counted in the cell it is placed in alone
    (a move's copy, or what it has not yet purged, holds its rows in two). A cell that cannot
    be read is left out of this reading, and logged."""
    rows: list[tuple] = []
    for cell in await db.cells.registered():
        try:
            async with db.pinned(cell).control() as session:
                found = (await session.execute(GAUGES)).all()
        except (OSError, SQLAlchemyError, psycopg.Error) as error:
            log.warning("gauges of a cell unreadable", cell=cell.name, error=str(error))
            continue
        rows.extend(row for row in found if placed.get(row[0]) == cell.name)
    return rows


def families(counts) -> list[Metric]:
    metrics: list[Metric] = []
    for family in STATE:
        metric = _family(family.name)
        for labels, value in sorted(counts.get(family.name, {}).items()):
            metric.add_metric(list(labels), value)
        metrics.append(metric)
    return metrics
