"""Finding tenants for the operators' console: search, filters and keyset pages by slug."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.tenants.models import Tenant


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def find_tenants(
    session: AsyncSession,
    *,
    text: str | None = None,
    status: str | None = None,
    tier: str | None = None,
    cell: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[Tenant], str | None]:
    """One page of tenants in slug order, and the slug to continue after (None: the last page).

    Keyset rather than offset: a tenant created or deleted meanwhile shifts nothing. Deleted
    tenants appear only when asked for by status.
    """
    if any("\x00" in value for value in (text, status, tier, cell, after) if value):
        return [], None  # nothing holds a NUL, and PostgreSQL refuses one in a query (a 500)
    query = select(Tenant)
    query = (
        query.where(Tenant.status == status) if status else query.where(Tenant.status != "deleted")
    )
    if text:
        pattern = _like(text)
        query = query.where(
            or_(Tenant.slug.ilike(pattern, escape="\\"), Tenant.name.ilike(pattern, escape="\\"))
        )
    if tier:
        query = query.where(Tenant.tier == tier)
    if cell:
        query = query.where(Tenant.cell == cell)
    if after:
        query = query.where(Tenant.slug > after)
    rows = list(await session.scalars(query.order_by(Tenant.slug).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].slug if more else None)


async def cells(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Tenant.cell).distinct().order_by(Tenant.cell)))
