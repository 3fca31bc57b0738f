"""Listens for configuration changes (PostgreSQL LISTEN/NOTIFY) and invalidates the local cache."""

from __future__ import annotations

import asyncio

import psycopg
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from tenantry.config.cache import PrefixCache
from tenantry.config.service import CHANNEL, EVERYONE

log = structlog.get_logger("tenantry.config")


class ConfigListener:
    def __init__(self, dsn: str, cache: PrefixCache) -> None:
        self.dsn = dsn
        self.cache = cache
        self.ready = asyncio.Event()

    async def run(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception_type((OSError, psycopg.Error)),
        )
        async for attempt in retrying:
            with attempt:
                await self._listen()

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # Whatever changed while we were not listening is unknown: start clean.
            self.cache.invalidate(EVERYONE)
            self.ready.set()
            log.info("listening for configuration changes")
            async for note in conn.notifies():
                self.cache.invalidate(note.payload)
