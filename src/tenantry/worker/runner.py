"""The worker: the workflows and activities of every feature, on the pool queue or a tenant's own,
and the outbox relay that starts and signals those workflows after their transactions commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy.engine import URL
from temporalio.client import Client
from temporalio.service import RetryConfig
from temporalio.worker import Worker

from tenantry.audit.anchors import ANCHOR_EVERY_SECONDS, AnchorMovedHeads
from tenantry.config.cell_tiers import SyncCellTiers
from tenantry.db.cells import cells_of
from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import libpq_dsn
from tenantry.events.activities import EventActivities
from tenantry.events.workflows import DeliverWebhook
from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.workflows import IncidentWorkflow
from tenantry.keys.service import TenantKeys
from tenantry.knowledge.activities import KnowledgeActivities
from tenantry.knowledge.embeddings import Embedder
from tenantry.knowledge.workflows import IngestDocument
from tenantry.observability.metrics import DB_POOL_SIZE
from tenantry.observability.pool import watch_pool
from tenantry.ops.activities import OpsActivities
from tenantry.ops.schedules import SyncSchedules
from tenantry.ops.workflows import BackupTenant, MoveTenant, RestoreTenant
from tenantry.outbox.activities import OutboxActivities
from tenantry.outbox.chores import Prune
from tenantry.outbox.relay import Relay
from tenantry.runtime.stopping import cancel_within
from tenantry.settings import Settings
from tenantry.tenants.cell_changes import ApplyCellChanges
from tenantry.tenants.cell_rows import SyncCellTenants
from tenantry.tenants.cleanup import DeletionCleanup
from tenantry.worker.client import connect
from tenantry.worker.retry import RetryTransactions

WORKFLOWS = [
    IngestDocument,
    IncidentWorkflow,
    DeliverWebhook,
    BackupTenant,
    RestoreTenant,
    MoveTenant,
]
log = structlog.get_logger("tenantry.worker")

SHUTDOWN_SECONDS = 30.0  # for the worker's running activities to end once asked to stop
# The relay's own calls give up fast: it retries on its own schedule, and must notice an outage.
RELAY_RETRY = RetryConfig(max_retries=2, max_elapsed_time_millis=3000)
RELAY_POOL = 3  # one delivering, one for the sweep and its chores, one loading keys


def relay_database(app_url: URL, settings: Settings) -> Database:
    """The relay's own pool, in every cell, apart from the activities': tenant work that holds
    every connection of the worker's (a backup's snapshot, a burst of activities) must not hold
    up every other tenant's workflow starts. The process's data keys load through it too."""
    engine = create_app_engine(app_url, pool_size=RELAY_POOL, max_overflow=0)
    watch_pool(engine, "relay")
    DB_POOL_SIZE.labels("relay").set(RELAY_POOL)
    return Database(engine, cells=cells_of(engine, settings))


def build_worker(
    client: Client,
    *,
    task_queue: str,
    db: Database,
    embedder: Embedder,
    settings: Settings,
    graceful_shutdown_timeout: timedelta = timedelta(0),
) -> Worker:
    activities = [
        *KnowledgeActivities(db, embedder, settings).all(),
        *IncidentActivities(db, embedder, settings).all(),
        *EventActivities(db, settings).all(),
        *OutboxActivities(db).all(),
        *OpsActivities(db, settings).all(),
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        max_concurrent_activities=8,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        interceptors=[RetryTransactions(db)],
    )


async def build_relay(
    db: Database, *, keys: TenantKeys, settings: Settings, dsn: str, admin_url: str | None
) -> Relay:
    """A relay with a client of its own (lazy: it starts, and waits, while Temporal is away),
    for the main cell's outbox; every other cell's gets its own (`CellRelays`, first: a chore
    that fails ends its sweep's round)."""
    client = await _relay_client(settings, keys)
    chores = [
        CellRelays(db, keys=keys, settings=settings),
        DeletionCleanup(db, client, admin_url=admin_url, keys=keys),
        SyncSchedules(db, client, settings),
        Prune(db),
        AnchorMovedHeads(db, every_seconds=ANCHOR_EVERY_SECONDS),
        SyncCellTenants(db),
        ApplyCellChanges(db),
        SyncCellTiers(db),
    ]
    return Relay(db, client, dsn=dsn, settings=settings, chores=chores)


async def _relay_client(settings: Settings, keys: TenantKeys):
    """A relay's own Temporal client: lazy, so the relay starts, and waits, while Temporal is away."""
    return await connect(
        settings.temporal_address,
        settings.temporal_namespace,
        keys=keys,
        lazy=True,
        retry=RELAY_RETRY,
    )


class CellRelays:
    """A chore of the main relay: a relay for every registered cell's outbox (its chores are
    the main relay's: they walk the control plane), started on the first sweep and, for a cell
    registered later, on the sweep after (a registration wakes the relays at once), so no
    worker needs a restart. One that stopped on an error is started again on the next sweep;
    they stop with the main relay (`aclose`)."""

    def __init__(self, db: Database, *, keys: TenantKeys, settings: Settings) -> None:
        self.db = db
        self.keys = keys
        self.settings = settings
        self.relays: dict[str, Relay] = {}
        self._running: dict[str, asyncio.Task] = {}

    async def __call__(self) -> int:
        if self.db.cells is None:
            return 0
        started = 0
        for cell in (await self.db.cells.registered())[1:]:
            running = self._running.get(cell.name)
            if running is not None and not running.done():
                continue
            if running is not None and not running.cancelled() and running.exception():
                log.error("cell relay stopped", cell=cell.name, exc_info=running.exception())
            client = await _relay_client(self.settings, self.keys)
            dsn = libpq_dsn(cell.engine.url)
            relay = Relay(self.db.pinned(cell), client, dsn=dsn, settings=self.settings)
            self.relays[cell.name] = relay
            self._running[cell.name] = asyncio.create_task(
                relay.run(), name=f"outbox-relay-{cell.name}"
            )
            log.info("outbox relay started", cell=cell.name)
            started += 1
        return started

    async def aclose(self) -> None:
        await cancel_within(self._running.values())
        self._running.clear()


class WorkerProcess:
    """A Temporal worker and beside it the relay, as one task (the test session's worker; a
    worker process, `runtime/worker_process.serve`, also runs the cells' relays and upkeep)."""

    def __init__(self, worker: Worker, relay: Relay) -> None:
        self.worker = worker
        self.relay = relay

    async def run(self) -> None:
        relaying = asyncio.create_task(self.relay.run(), name="outbox-relay")
        try:
            await self.worker.run()
        finally:
            await cancel_within([relaying])

    async def shutdown(self, seconds: float = SHUTDOWN_SECONDS) -> bool:
        """Ask the worker to stop and wait for it at most `seconds`: the SDK's shutdown waits for
        every running activity, and one stuck in a blocking call would wait forever. False (and a
        warning) when it did not stop in time; a process then ends regardless."""
        try:
            await asyncio.wait_for(self.worker.shutdown(), seconds)
        except TimeoutError:
            log.warning("worker did not stop in time", seconds=seconds)
            return False
        return True
