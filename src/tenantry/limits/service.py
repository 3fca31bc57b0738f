"""Operator limit overrides and usage reports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.paging import decode_cursor, encode_cursor
from tenantry.db.session import Database, set_tenant
from tenantry.identity.models import ApiKey, User
from tenantry.limits.models import UsageDaily
from tenantry.limits.schemas import TenantLimitsOut, UsageDay, UsageRow
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import TIERS, LimitsPatch, effective_limits

USAGE_ROWS = "usage"
TENANT_BATCH = 200


def limits_view(tenant: Tenant) -> TenantLimitsOut:
    return TenantLimitsOut(
        tenant=tenant.slug,
        tier=tenant.tier,
        tier_limits=TIERS[tenant.tier].limits,
        overrides=tenant.limit_overrides,
        effective=effective_limits(tenant.tier, tenant.limit_overrides),
    )


async def set_overrides(
    session: AsyncSession, *, slug: str, patch: LimitsPatch, actor: str
) -> Tenant:
    tenant = await tenants.get_live(session, slug=slug)
    before = dict(tenant.limit_overrides)
    overrides = dict(before)
    for name, value in patch.model_dump(exclude_unset=True).items():
        if value is None:
            overrides.pop(name, None)
        else:
            overrides[name] = value
    if overrides != before:
        tenant.limit_overrides = overrides
        tenant.updated_at = utcnow()
        await cell_changes.audit_event(
            session,
            tenant,
            actor=actor,
            action="tenant.limits_changed",
            target=f"tenant:{tenant.slug}",
            before=before,
            after=overrides,
        )
        # Every process drops its cached limits when this commits: a trigger on `tenants`
        # NOTIFYs each change of tier, overrides or status, whichever path made it.
    return tenant


async def daily_usage(
    session: AsyncSession, *, tenant_id: uuid.UUID, start: date, end: date
) -> list[UsageDay]:
    rows = await session.execute(
        select(UsageDaily.day, UsageDaily.metric, UsageDaily.value)
        .where(UsageDaily.tenant_id == tenant_id, UsageDaily.day >= start, UsageDaily.day <= end)
        .order_by(UsageDaily.day)
    )
    days: dict[date, dict[str, int]] = {}
    for day, metric, value in rows:
        days.setdefault(day, {})[metric] = value
    return [UsageDay(day=d, metrics=m) for d, m in days.items()]


async def current_counts(session: AsyncSession, *, tenant_id: uuid.UUID) -> dict[str, int]:
    users = await session.scalar(select(func.count()).where(User.tenant_id == tenant_id))
    keys = await session.scalar(
        select(func.count()).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
    )
    return {"users": int(users or 0), "api_keys": int(keys or 0)}


async def usage_rows(
    session: AsyncSession,
    db: Database,
    *,
    start: date,
    end: date,
    cursor: str | None,
    limit: int,
) -> tuple[list[UsageRow], str | None]:
    """Every live tenant's daily counters, by (tenant slug, day, metric), one page at a time.

    A control-plane transaction that switches its tenant per tenant: RLS still decides what
    each query sees, and the page costs one transaction however many tenants it spans; a tenant
    placed in another cell is read there, in a read-only transaction of its own.
    """
    after = decode_cursor(USAGE_ROWS, cursor, [str, date, str]) if cursor else None
    rows: list[UsageRow] = []
    async for tenant in _tenants_from(session, after[0] if after else None):
        query = select(UsageDaily.day, UsageDaily.metric, UsageDaily.value).where(
            UsageDaily.tenant_id == tenant.id, UsageDaily.day >= start, UsageDaily.day <= end
        )
        if after is not None and tenant.slug == after[0]:
            query = query.where(tuple_(UsageDaily.day, UsageDaily.metric) > tuple_(*after[1:]))
        query = query.order_by(UsageDaily.day, UsageDaily.metric).limit(limit + 1 - len(rows))
        if tenant.cell != session.info.get("cell", tenant.cell):  # its counters are in its cell
            async with db.tenant(tenant.id, readonly=True) as elsewhere:
                found = (await elsewhere.execute(query)).all()
        else:
            await set_tenant(session, tenant.id)
            found = (await session.execute(query)).all()
        rows += [UsageRow(tenant=tenant.slug, day=d, metric=m, value=v) for d, m, v in found]
        if len(rows) > limit:
            last = rows[limit - 1]
            return rows[:limit], encode_cursor(USAGE_ROWS, [last.tenant, last.day, last.metric])
    return rows, None


async def _tenants_from(session: AsyncSession, slug: str | None) -> AsyncIterator[Tenant]:
    """Live tenants in slug order, from `slug` on (inclusive), fetched in batches."""
    query = (
        select(Tenant).where(Tenant.status != "deleted").order_by(Tenant.slug).limit(TENANT_BATCH)
    )
    condition = Tenant.slug >= slug if slug else None
    while True:
        batch = list(await session.scalars(query if condition is None else query.where(condition)))
        for tenant in batch:
            yield tenant
        if len(batch) < TENANT_BATCH:
            return
        condition = Tenant.slug > batch[-1].slug
