"""Housekeeping the relay does on its sweeps: delivered messages and old activity effects after a
week, expired Idempotency-Key records (tenant by tenant, under each tenant's own policy)."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from sqlalchemy import text

from tenantry.db.session import Database

log = structlog.get_logger("tenantry.outbox")

KEEP = timedelta(days=7)
EVERY_SECONDS = 3600.0


class Prune:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._last: float | None = None

    async def __call__(self) -> int:
        if self._last is not None and time.monotonic() - self._last < EVERY_SECONDS:
            return 0
        self._last = time.monotonic()
        async with self.db.control() as session:
            removed = int(
                await session.scalar(text("SELECT tenantry_prune(:keep)"), {"keep": KEEP}) or 0
            )
        if removed:
            log.info("pruned outbox and idempotency records", rows=removed)
        return removed
