"""Quotas: counts a tenant may not exceed (users, API keys, documents) and daily volumes.

A quota is checked and taken in the transaction that writes, in one atomic step, so that requests
arriving together cannot each find the same last place free:
- counts (`reserve`): a per-tenant lock for that quota is taken first, then the rows are counted
  and the new one written; the next request counts after this one committed. The count is the
  rows themselves, so deleting one gives its place back, whichever path deleted it.
- daily ingestion bytes (`charge_ingestion`): a guarded counter in `usage_daily`, increased only
  `WHERE value + n <= limit`; a document that fails gives its bytes back (`release_ingestion`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from tenantry.db.locks import serialise
from tenantry.errors import AppError
from tenantry.observability.metrics import QUOTA_REFUSED
from tenantry.observability.tenant_labels import tenant_label
from tenantry.tenancy.context import current_tenant_or_none
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import effective_limits

INGESTION_METRIC = "ingestion_bytes"

# The row's lock (ON CONFLICT DO UPDATE) makes concurrent charges queue; the WHERE re-reads the
# committed value after the wait, so no two charges both fit into the same remaining bytes.
CHARGE = text(
    "INSERT INTO usage_daily AS u (tenant_id, day, metric, value) "
    "SELECT :tenant_id, :day, :metric, :amount WHERE :amount <= :limit "
    "ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = u.value + EXCLUDED.value "
    "WHERE u.value + EXCLUDED.value <= :limit "
    "RETURNING u.value"
)
USED = text(
    "SELECT value FROM usage_daily WHERE tenant_id = :tenant_id AND day = :day AND metric = :metric"
)
RELEASE = text(
    "UPDATE usage_daily SET value = greatest(0, value - :amount) "
    "WHERE tenant_id = :tenant_id AND day = :day AND metric = :metric"
)


class QuotaExhausted(AppError):
    status, code, title = 403, "quota-exhausted", "Quota exhausted"


class QuotaTooLarge(AppError):
    status, code, title = 413, "quota-too-large", "Over the quota"


def ensure_room(*, quota: str, used: int, limit: int, adding: int = 1, status: int = 403) -> None:
    if used + adding <= limit:
        return
    error = QuotaExhausted if status == 403 else QuotaTooLarge
    QUOTA_REFUSED.labels(tenant_label(current_tenant_or_none()), quota).inc()
    raise error(
        f"The '{quota}' quota is {limit}; {used} in use, {adding} more requested.",
        errors=[{"quota": quota, "limit": limit, "used": used, "requested": adding}],
    )


async def hold(session: AsyncSession, *, tenant_id: uuid.UUID, quota: str) -> None:
    """Hold the tenant's `quota` until this transaction ends (another holder waits for it)."""
    await serialise(session, f"quota:{quota}", tenant_id)


async def reserve(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    quota: str,
    limit: int,
    used: Executable,
    adding: int = 1,
) -> None:
    """Hold the tenant's `quota` until this transaction ends, then check that `adding` more fit.

    `used` counts what the quota covers (a `SELECT count(*)` of the tenant's rows); the caller
    writes the new rows in this same transaction.
    """
    await hold(session, tenant_id=tenant_id, quota=quota)
    ensure_room(quota=quota, used=int(await session.scalar(used) or 0), limit=limit, adding=adding)


async def charge_ingestion(
    session: AsyncSession, *, tenant_id: uuid.UUID, day: date, amount: int, limit: int
) -> None:
    """Add `amount` bytes to the tenant's ingestion on `day`, or refuse (413) if they do not fit."""
    params = {"tenant_id": tenant_id, "day": day, "metric": INGESTION_METRIC}
    if await session.scalar(CHARGE, {**params, "amount": amount, "limit": limit}) is not None:
        return
    used = int(await session.scalar(USED, params) or 0)
    ensure_room(quota="ingestion_bytes_per_day", used=used, limit=limit, adding=amount, status=413)
    raise AssertionError("a refused charge must not fit")  # pragma: no cover


async def release_ingestion(
    session: AsyncSession, *, tenant_id: uuid.UUID, day: date, amount: int
) -> None:
    """Give back bytes charged on `day` (a document whose ingestion failed)."""
    await session.execute(
        RELEASE,
        {"tenant_id": tenant_id, "day": day, "metric": INGESTION_METRIC, "amount": amount},
    )


class Charged(Protocol):
    tenant_id: uuid.UUID
    size_bytes: int
    extracted_bytes: int | None
    created_at: Any


def ingestion_day(document: Charged) -> date:
    """A document's bytes count on the (UTC) day it was submitted, extraction included."""
    return document.created_at.astimezone(UTC).date()


def charged_bytes(document: Charged) -> int:
    """What a document counts against the daily quota: its upload, or its text if larger."""
    return max(document.size_bytes, document.extracted_bytes or 0)


async def charge_extracted_text(
    session: AsyncSession, *, document: Charged, text: str, tenant: Tenant
) -> None:
    """Once a document's text is extracted, it counts as the larger of its upload and its text
    (a small compressed PDF can hold a great deal of text). Charged once per document, however
    often the extraction runs; raises `QuotaTooLarge` when the difference does not fit."""
    if document.extracted_bytes is not None:
        return
    extracted = len(text.encode())
    more = max(0, extracted - document.size_bytes)
    if more:
        limits = effective_limits(tenant.tier, tenant.limit_overrides)
        await charge_ingestion(
            session,
            tenant_id=document.tenant_id,
            day=ingestion_day(document),
            amount=more,
            limit=limits.ingestion_bytes_per_day,
        )
    document.extracted_bytes = extracted
