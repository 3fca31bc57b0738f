"""Counting what the features do, in one line at each call site.

Workers know a tenant by id; `tenant_named` reads its slug and tier once a minute per process
(the `tenant` label is the slug of a named tenant, see `tenant_labels`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.observability import metrics as m
from tenantry.observability.tenant_labels import tenant_label

NAME_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Named:
    slug: str
    tier: str


_names: dict[uuid.UUID, tuple[float, Named]] = {}


async def tenant_named(session: AsyncSession, tenant_id: uuid.UUID) -> Named:
    cached = _names.get(tenant_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    from tenantry.tenants.models import Tenant  # the models import this module's users

    tenant = await session.get(Tenant, tenant_id)
    named = Named(tenant.slug, tenant.tier) if tenant else Named("unknown", "free")
    _names[tenant_id] = (time.monotonic() + NAME_SECONDS, named)
    return named


def searched(tenant, *, source: str, seconds: float, hits: int) -> None:
    m.SEARCHES.labels(tenant_label(tenant), source, "hits" if hits else "empty").inc()
    m.SEARCH_LATENCY.labels(tenant.tier, source).observe(seconds)


def ingested(tenant, *, outcome: str, chunks: int, seconds: float | None) -> None:
    who = tenant_label(tenant)
    m.DOCUMENTS_INGESTED.labels(who, outcome).inc()
    if chunks:
        m.CHUNKS_INGESTED.labels(who).inc(chunks)
    if seconds is not None:
        m.INGESTION_DURATION.labels(tenant.tier, outcome).observe(max(0.0, seconds))


def incident_reported(tenant) -> None:
    m.INCIDENTS_REPORTED.labels(tenant_label(tenant)).inc()


def triaged(tenant, *, seconds: float) -> None:
    m.TRIAGE_LATENCY.labels(tenant.tier).observe(max(0.0, seconds))


def escalated(tenant) -> None:
    m.ESCALATIONS.labels(tenant_label(tenant)).inc()


def resolved(tenant, *, how: str) -> None:
    m.RESOLUTIONS.labels(tenant_label(tenant), how).inc()


def webhook_attempt(tenant, *, outcome: str) -> None:
    m.WEBHOOK_DELIVERIES.labels(tenant_label(tenant), outcome).inc()


def quota_refused(tenant, *, limit: str) -> None:
    m.QUOTA_REFUSED.labels(tenant_label(tenant), limit).inc()
