"""Tenant lifecycle changes counted in the control plane, in the transaction that makes them.

A process counting in its own memory loses what a short-lived one (a CLI command) counted when it
exits; a row updated with the change is counted exactly when the change commits, whoever made it,
and every scrape reads the same totals (`tenantry_tenant_lifecycle_events_total`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

ACTIONS = ("created", "updated", "suspended", "resumed", "deleted", "purged")
_COUNT = text(
    "INSERT INTO tenant_lifecycle_events (action, count) VALUES (:action, 1) "
    "ON CONFLICT (action) DO UPDATE SET count = tenant_lifecycle_events.count + 1"
)


async def record(session: AsyncSession, *, action: str) -> None:
    # The row stays locked until the transaction ends: lifecycle changes are rare, and a
    # counter that rolls back with its change is worth that.
    await session.execute(_COUNT, {"action": action})


async def totals(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(text("SELECT action, count FROM tenant_lifecycle_events"))
    return {action: count for action, count in rows.all()}
