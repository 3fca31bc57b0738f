"""One page of a query and the count of all its rows: what every list endpoint answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def page(
    session: AsyncSession, query: Select, *, order_by: Any, limit: int, offset: int
) -> tuple[list[Any], int]:
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(order_by).limit(limit).offset(offset))
    return list(rows), int(total or 0)
