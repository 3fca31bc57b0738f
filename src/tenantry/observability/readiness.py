"""Readiness follows the workers: `/health/ready` answers 503 once no worker has polled the
shared task queue for `TENANTRY_READY_WORKER_STALE_SECONDS` (default 300 s, the 5 minutes for
which Temporal itself lists a poller, its `matching.PollerHistoryTTL`; 0 turns it off).

The trade-off, chosen with the issue: every replica shares the workers, so a fleet without them
leaves the load balancer all at once, and reads that would still have worked are refused with it.
In exchange an orchestrator (and whoever watches it) sees at once that the platform cannot do
its work, instead of a fleet that answers 202 while the outbox fills. Temporal being unreachable
is not a reason on its own (the outbox keeps the work): then whether workers poll is unknown, and
readiness does not follow it.

A replica that just started waits the same window before refusing, so that a fleet starting
together (API and workers) is not refused before any worker could poll; the answer is kept a few
seconds so that every probe of every replica does not ask Temporal again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tenantry.observability import components

CACHE_SECONDS = 5.0


class WorkerReadiness:
    def __init__(self, *, stale_seconds: float) -> None:
        self.stale_seconds = stale_seconds
        self.cache_seconds = min(CACHE_SECONDS, stale_seconds / 2)
        self.started = time.monotonic()
        self._answer: dict[str, Any] | None = None
        self._until = float("-inf")
        self._lock = asyncio.Lock()

    async def check(self, state) -> dict[str, Any]:
        async with self._lock:  # concurrent probes share one question to Temporal
            if self._answer is None or time.monotonic() >= self._until:
                self._answer = await self._look(state)
                self._until = time.monotonic() + self.cache_seconds
            return self._answer

    async def _look(self, state) -> dict[str, Any]:
        queue = state.settings.pool_task_queue
        started = time.perf_counter()
        found: dict[str, Any] = {"name": "workers", "task_queue": queue}
        try:
            view = await asyncio.wait_for(
                components.describe_queue(state.temporal, queue), components.CHECK_TIMEOUT_SECONDS
            )
        except Exception as exc:  # reported, not raised; see the module's docstring
            found.update(status="unknown", needed_for_ready=False, error=type(exc).__name__)
        else:
            age = components.last_poll_seconds_ago(view)
            waited = time.monotonic() - self.started
            found["last_poll_seconds_ago"] = age
            if age is not None and age <= self.stale_seconds:
                found["status"] = "ok"
            elif waited < self.stale_seconds:  # just started: workers may not have polled yet
                found.update(status="ok", grace_seconds_left=round(self.stale_seconds - waited, 1))
            else:
                found.update(
                    status="down",
                    detail=f"no worker polled task queue {queue} "
                    f"in the last {self.stale_seconds:g} s",
                )
        found["stale_after_seconds"] = self.stale_seconds
        found["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return found
