"""Listens for configuration changes (PostgreSQL LISTEN/NOTIFY) and invalidates the local cache.

A change is notified in the transaction that makes it (delivered only if it commits), so in the
database of the tenant's cell: the listener listens on the control plane's database and on every
registered cell's. It learns of a new cell when one is registered (the registration notifies
`CELLS` on the control plane) and, as a safety net, every `rescan_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from tenantry.config.cache import PrefixCache
from tenantry.config.service import CELLS, CHANNEL, EVERYONE
from tenantry.db.session import Database
from tenantry.db.urls import libpq_dsn
from tenantry.runtime.stopping import cancel_within

log = structlog.get_logger("tenantry.config")

# The other cells' listening connections: {cell name: libpq DSN}, read from the control plane.
CellDsns = Callable[[], Awaitable[dict[str, str]]]
RESCAN_SECONDS = 60.0


def other_cells_of(db: Database) -> CellDsns | None:
    """The registered cells other than the control plane's database, as `db` reaches them."""
    if db.cells is None:
        return None
    cells = db.cells

    async def dsns() -> dict[str, str]:
        return {c.name: libpq_dsn(c.engine.url) for c in (await cells.registered())[1:]}

    return dsns


class ConfigListener:
    def __init__(
        self,
        dsn: str,
        cache: PrefixCache,
        *,
        cells: CellDsns | None = None,
        rescan_seconds: float = RESCAN_SECONDS,
    ) -> None:
        self.dsn = dsn
        self.cache = cache
        self.ready = asyncio.Event()  # listening on the control plane's database
        # One per other cell, set once its connection listens.
        self.cells_ready: dict[str, asyncio.Event] = {}
        self._cells = cells
        self._rescan_seconds = rescan_seconds
        self._rescan = asyncio.Event()
        self._listeners: dict[str, asyncio.Task] = {}

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._listen_forever(self.dsn, self.ready), name="config")]
        if self._cells is not None:
            tasks.append(asyncio.create_task(self._watch_cells(), name="config-cells"))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_within([*tasks, *self._listeners.values()])

    async def _watch_cells(self) -> None:
        while True:
            try:
                found = await self._cells()
            except Exception:  # the control plane away: the next round tries again
                log.warning("cannot list the cells to listen on", exc_info=True)
                found = {}
            for name, dsn in found.items():
                running = self._listeners.get(name)
                if running is None or running.done():
                    ready = self.cells_ready.setdefault(name, asyncio.Event())
                    self._listeners[name] = asyncio.create_task(
                        self._listen_forever(dsn, ready), name=f"config-{name}"
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), timeout=self._rescan_seconds)
            self._rescan.clear()

    async def _listen_forever(self, dsn: str, ready: asyncio.Event) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception_type((OSError, psycopg.Error)),
        )
        async for attempt in retrying:
            with attempt:
                await self._listen(dsn, ready)

    async def _listen(self, dsn: str, ready: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # Whatever changed while we were not listening here is unknown: start clean.
            self.cache.invalidate(EVERYONE)
            ready.set()
            log.info("listening for configuration changes")
            async for note in conn.notifies():
                if note.payload == CELLS:
                    self._rescan.set()
                    continue
                self.cache.invalidate(note.payload)
