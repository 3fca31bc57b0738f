"""Database pool use as a gauge: +1 when a connection is checked out, -1 when it comes back."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.observability.metrics import DB_POOL_IN_USE


def watch_pool(engine: AsyncEngine, pool: str) -> None:
    gauge = DB_POOL_IN_USE.labels(pool)
    event.listen(engine.sync_engine, "checkout", lambda *_: gauge.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: gauge.dec())
