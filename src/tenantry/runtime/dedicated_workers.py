"""The dedicated task queues a worker process serves itself (`TENANTRY_DEDICATED_WORKERS=embedded`,
the default): one Temporal `Worker` per tenant whose configuration gives it dedicated workers,
beside the pool's, with the same workflows and activities, in the tenant's own Temporal
namespace where its configuration gives it one (`features.own_namespace`).

Every sweep reads which tenants have them (in every cell), starts a worker for each new queue and
stops the worker of a queue no longer wanted once no workflow runs on it: a workflow keeps the
task queue (and namespace) it started on, so a tenant moved back to the pool still has its
running workflows finished by its own worker. The first sweep also serves the dedicated queue of any live tenant
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
from temporalio.api.workflowservice.v1 import ListNamespacesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from tenantry.runtime.stopping import being_cancelled, cancel_within
from tenantry.tenants.namespaces import dedicated_task_queue, tenant_namespace
from tenantry.worker.namespaces import Namespaces

log = structlog.get_logger("tenantry.worker")

Wanted = Callable[[], Awaitable[dict[str, bool]]]  # slug: whether in its own namespace
Live = Callable[[], Awaitable[list[str]]]  # every live tenant's slug
MakeWorker = Callable[[Client, str], Worker]  # a worker for a task queue, in a namespace
Served = tuple[str, str]  # (namespace, task queue)
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
        live: Live | None = None,
    ) -> None:
        self.client = client
        self.namespaces = Namespaces(client)
        self.wanted = wanted
        self.live = live  # every live tenant's slug, for the first sweep's look for leftovers
        self._looked_for_leftovers = live is None
        self.make_worker = make_worker
        self.every_seconds = every_seconds
        self.stop_seconds = stop_seconds
        self.running: dict[Served, tuple[Worker, asyncio.Task]] = {}

    def served(self) -> list[Served]:
        """The (namespace, dedicated queue) pairs this process polls now."""
        return sorted(key for key, (_, task) in self.running.items() if not task.done())

    def queues(self) -> list[str]:
        return sorted({queue for _, queue in self.served()})

    def tasks(self) -> list[asyncio.Task]:
        return [task for _, task in self.running.values()]

    async def sweep(self) -> None:
        """Start the workers of the queues now wanted; stop those no longer wanted and idle."""
        wanted = {
            (self.namespaces.of_tenant(slug, own=own), dedicated_task_queue(slug))
            for slug, own in (await self.wanted()).items()
        }
        serve = wanted
        if not self._looked_for_leftovers:
            serve = wanted | await self._leftovers(wanted)
            self._looked_for_leftovers = True
        for key, (_, task) in list(self.running.items()):
            if task.done():  # died (its error is logged below): started again if still wanted
                self.running.pop(key)
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "dedicated worker failed",
                        namespace=key[0],
                        task_queue=key[1],
                        exc_info=task.exception(),
                    )
        for namespace, queue in sorted(serve - self.running.keys()):
            worker = self.make_worker(await self.namespaces.ready(namespace), queue)
            task = asyncio.create_task(worker.run(), name=f"dedicated-worker:{namespace}/{queue}")
            self.running[namespace, queue] = (worker, task)
            log.info("dedicated worker started", namespace=namespace, task_queue=queue)
        for key in sorted(self.running.keys() - wanted):
            if await self._open_workflows(key):
                continue  # workflows that started there finish there
            await self._stop(key)
            log.info("dedicated worker stopped", namespace=key[0], task_queue=key[1])

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
        await asyncio.gather(*(self._stop(key) for key in list(self.running)))

    async def _leftovers(self, wanted: set[Served]) -> set[Served]:
        """The dedicated queues of live tenants that running workflows were left on, in the
        platform's namespace and in any tenant's own (slugs are safe in a query)."""
        slugs = await self.live()
        platform = self.client.namespace
        others = sorted({dedicated_task_queue(s) for s in slugs} - {q for _, q in wanted})
        found = {(platform, q) for q in await self._with_open_workflows(self.client, others)}
        existing = await self._namespaces()
        for slug in slugs:
            key = (tenant_namespace(slug), dedicated_task_queue(slug))
            if key[0] in existing and key not in wanted and await self._open_workflows(key):
                found.add(key)
        return found

    async def _namespaces(self) -> set[str]:
        names, token = set(), b""
        while True:
            page = await self.client.workflow_service.list_namespaces(
                ListNamespacesRequest(page_size=1000, next_page_token=token)
            )
            names.update(n.namespace_info.name for n in page.namespaces)
            token = page.next_page_token
            if not token:
                return names

    @staticmethod
    async def _with_open_workflows(client: Client, queues: list[str]) -> set[str]:
        """Those of `queues` that running workflows are on, in the client's namespace."""
        found: set[str] = set()
        for start in range(0, len(queues), ASKED_AT_ONCE):
            names = ", ".join(f"'{q}'" for q in queues[start : start + ASKED_AT_ONCE])
            query = f"ExecutionStatus = 'Running' AND TaskQueue IN ({names})"
            async for execution in client.list_workflows(query):
                found.add(execution.task_queue)
        return found

    async def _open_workflows(self, key: Served) -> int:
        """Running workflows on the queue; none when its namespace is gone (a deleted tenant's
        own, whose workflows went with it)."""
        namespace, queue = key
        try:
            count = await self.namespaces.client(namespace).count_workflows(
                f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
            )
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or namespace == self.client.namespace:
                raise
            return 0
        return count.count

    async def _stop(self, key: Served) -> None:
        worker, task = self.running.pop(key)
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.shutdown(), self.stop_seconds)
        await cancel_within([task])
