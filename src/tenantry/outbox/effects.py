"""Keyed effects: an activity records what it did under a key (an incident, its episode, an
ordinal) in the transaction that does it, so a retry after that commit finds the record and
returns it instead of doing the work again."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.outbox.models import ActivityEffect


async def recall(session: AsyncSession, *, tenant_id: uuid.UUID, key: str) -> dict[str, Any] | None:
    return await session.scalar(
        select(ActivityEffect.result).where(
            ActivityEffect.tenant_id == tenant_id, ActivityEffect.key == key
        )
    )


async def remember(
    session: AsyncSession, *, tenant_id: uuid.UUID, key: str, result: dict[str, Any]
) -> None:
    # A concurrent attempt that did the same work fails on the primary key and rolls back whole.
    session.add(ActivityEffect(tenant_id=tenant_id, key=key, result=result))
    await session.flush()
