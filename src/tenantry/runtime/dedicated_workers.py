"""The dedicated task queues a worker process serves itself (`TENANTRY_DEDICATED_WORKERS=embedded`,
the default): one Temporal `Worker` per tenant whose configuration gives it dedicated workers,
beside the pool's, with the same workflows and activities.

Every sweep reads which tenants have them (in every cell), starts a worker for each new queue and
stops the worker of a queue no longer wanted once no workflow runs on it: a workflow keeps the
task queue it started on, so a tenant moved back to the pool still has its running workflows
finished by its own worker. The first sweep also serves the dedicated queue of any live tenant
that still has running workflows there (left by a tenant that lost its dedicated workers while no
process served them), until they end. A queue's worker that died is started again on the next
sweep.
Stopping is bounded, like the rest of the process (`stopping.cancel_within`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from tenantry.runtime.stopping import being_cancelled, cancel_within
from tenantry.tenants.namespaces import dedicated_task_queue

log = structlog.get_logger("tenantry.worker")

Wanted = Callable[[], Awaitable[list[str]]]  # the slugs whose queues should be served
MakeWorker = Callable[[str], Worker]  # a worker for a task queue
ASKED_AT_ONCE = 50  # queues per visibility query, when looking for workflows left on them


class DedicatedWorkers:
    def __init__(
        self,
        client: Client,
        *,
        wanted: Wanted,
        make_worker: MakeWorker,
        every_seconds: float,
        stop_seconds: float,
        live: Wanted | None = None,
    ) -> None:
        self.client = client
        self.wanted = wanted
        self.live = live  # every live tenant's slug, for the first sweep's look for leftovers
        self._looked_for_leftovers = live is None
        self.make_worker = make_worker
        self.every_seconds = every_seconds
        self.stop_seconds = stop_seconds
        self.running: dict[str, tuple[Worker, asyncio.Task]] = {}

    def queues(self) -> list[str]:
        """The dedicated queues this process polls now."""
        return sorted(queue for queue, (_, task) in self.running.items() if not task.done())

    def tasks(self) -> list[asyncio.Task]:
        return [task for _, task in self.running.values()]

    async def sweep(self) -> None:
        """Start the workers of the queues now wanted; stop those no longer wanted and idle."""
        wanted = {dedicated_task_queue(slug) for slug in await self.wanted()}
        serve = wanted
        if not self._looked_for_leftovers:
            others = {dedicated_task_queue(slug) for slug in await self.live()} - wanted
            serve = wanted | await self._with_open_workflows(sorted(others))
            self._looked_for_leftovers = True
        for queue, (_, task) in list(self.running.items()):
            if task.done():  # died (its error is logged below): started again if still wanted
                self.running.pop(queue)
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "dedicated worker failed", task_queue=queue, exc_info=task.exception()
                    )
        for queue in sorted(serve - self.running.keys()):
            worker = self.make_worker(queue)
            task = asyncio.create_task(worker.run(), name=f"dedicated-worker:{queue}")
            self.running[queue] = (worker, task)
            log.info("dedicated worker started", task_queue=queue)
        for queue in sorted(self.running.keys() - wanted):
            if await self._open_workflows(queue):
                continue  # workflows that started there finish there
            await self._stop(queue)
            log.info("dedicated worker stopped", task_queue=queue)

    async def run(self) -> None:
        """Sweep every `every_seconds` until cancelled; a failed sweep changes nothing."""
        while True:
            try:
                await self.sweep()
            except Exception:
                if being_cancelled():
                    raise
                log.exception("dedicated workers sweep failed")
            await asyncio.sleep(self.every_seconds)

    async def shutdown(self) -> None:
        """Stop every dedicated worker, each within `stop_seconds`."""
        await asyncio.gather(*(self._stop(queue) for queue in list(self.running)))

    async def _with_open_workflows(self, queues: list[str]) -> set[str]:
        """Those of `queues` that running workflows are on (slugs are safe in a query)."""
        found: set[str] = set()
        for start in range(0, len(queues), ASKED_AT_ONCE):
            names = ", ".join(f"'{q}'" for q in queues[start : start + ASKED_AT_ONCE])
            query = f"ExecutionStatus = 'Running' AND TaskQueue IN ({names})"
            async for execution in self.client.list_workflows(query):
                found.add(execution.task_queue)
        return found

    async def _open_workflows(self, queue: str) -> int:
        count = await self.client.count_workflows(
            f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
        )
        return count.count

    async def _stop(self, queue: str) -> None:
        worker, task = self.running.pop(queue)
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.shutdown(), self.stop_seconds)
        await cancel_within([task])
