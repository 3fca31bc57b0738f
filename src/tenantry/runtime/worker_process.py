"""The worker process of `tenantry run`: every tenant's workflows and activities, the outbox relay,
and the owner's upkeep (a backup schedule sync at start, HNSW promotion), away from the API
processes. `tenantry worker` runs the same loop alone.

A pool worker process also serves the dedicated task queue of every tenant given dedicated
workers (a silo placement), one Temporal worker each, started and stopped as tenants gain and
lose them (`runtime/dedicated_workers.py`), unless TENANTRY_DEDICATED_WORKERS=external leaves them
to processes of their own (`tenantry worker --tenant SLUG`).

It runs at a lower CPU priority (nice 10): on a machine it shares with the API, tenant work
waits for requests, not the other way round. A signal stops it within its grace period whatever
Temporal's state: SIGTERM turns readiness to 503, stops polling and gives running activities
TENANTRY_SHUTDOWN_GRACE_SECONDS (SIGINT: three seconds at most); a watchdog ends the process if the
Temporal SDK is still retrying a server that has gone away.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta

import structlog
from prometheus_client import start_http_server
from sqlalchemy import text

from tenantry.db.cells import cells_of
from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import app_url, libpq_dsn
from tenantry.keys.service import TenantKeys, platform_key
from tenantry.knowledge.embeddings import checked_embedder
from tenantry.knowledge.promotion import promote
from tenantry.observability.exposition import MULTIPROC_ENV
from tenantry.observability.logging import configure_logging
from tenantry.observability.metrics import DB_POOL_SIZE, REGISTRY
from tenantry.observability.pool import watch_pool
from tenantry.observability.temporal_sdk import SdkMetrics
from tenantry.observability.tenant_labels import TENANTS
from tenantry.ops import schedules
from tenantry.runtime.children import die_with_parent, tell_ready
from tenantry.runtime.dedicated_workers import DedicatedWorkers
from tenantry.runtime.stopping import cancel_within
from tenantry.runtime.worker_health import WorkerHealth
from tenantry.settings import Settings, get_settings
from tenantry.tenants.dedicated import dedicated_placements, live_slugs
from tenantry.worker.client import connect
from tenantry.worker.namespaces import Namespaces
from tenantry.worker.runner import build_relay, build_worker, relay_database

log = structlog.get_logger("tenantry.worker")
INTERRUPT_GRACE_SECONDS = 3.0
UPKEEP_EVERY_SECONDS = 300
WORKER_POOL = 4


async def serve(
    settings: Settings,
    ready_fd: int | None = None,
    *,
    task_queue: str | None = None,
    namespace: str | None = None,
    upkeep: bool = True,
    health_port: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Poll `task_queue` (default: the pool's), in `namespace` (default: the platform's, and a
    tenant's own is registered first), until SIGTERM or SIGINT, then stop in time."""
    task_queue = task_queue or settings.pool_task_queue
    stopping = asyncio.Event()
    grace = {"seconds": settings.shutdown_grace_seconds}
    loop = asyncio.get_running_loop()
    health: WorkerHealth | None = None

    def stop(sig: int) -> None:
        if sig == signal.SIGINT:
            grace["seconds"] = min(grace["seconds"], INTERRUPT_GRACE_SECONDS)
        if health is not None:
            health.draining = True
        if not stopping.is_set():
            _watchdog(grace["seconds"] + 2)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)

    application_url = app_url(settings, settings.database_url)
    engine = create_app_engine(application_url, pool_size=WORKER_POOL, max_overflow=0)
    watch_pool(engine, "worker")
    DB_POOL_SIZE.labels("worker").set(WORKER_POOL)
    TENANTS.configure(top=settings.metrics_top_tenants, cap=settings.metrics_max_tenant_labels)
    db = Database(engine, cells=cells_of(engine, settings))
    relay_db = relay_database(application_url, settings)
    if health_port is None:  # the health server answers /metrics itself
        _serve_metrics(settings)
    # Temporal's own metrics (schedule-to-start, slots) join the worker's, drained every second.
    sdk_metrics = SdkMetrics()
    draining = asyncio.create_task(sdk_metrics.run())
    try:
        # One per process, on the relay's pool: a key is loaded even while activities hold
        # every connection of theirs.
        keys = TenantKeys(relay_db, platform_key(settings))
        client = await connect(
            settings.temporal_address,
            settings.temporal_namespace,
            keys=keys,
            runtime=sdk_metrics.runtime,
        )
        if health_port is not None:
            health = WorkerHealth(_checks(client, db), before_scrape=sdk_metrics.drain)
            await health.start(settings.host, health_port)
        embedder = await checked_embedder(settings)

        def make_worker(namespace_client, queue: str):
            return build_worker(
                namespace_client,
                task_queue=queue,
                db=db,
                embedder=embedder,
                settings=settings,
                # Shorter than the process's own wait, so that activities still running when it
                # ends are cancelled by the SDK (and can record that) before the process gives up.
                graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds * 0.75),
            )

        polled = client if namespace is None else await Namespaces(client).ready(namespace)
        worker = make_worker(polled, task_queue)
        dedicated = DedicatedWorkers(
            client,
            wanted=lambda: dedicated_placements(db),
            live=lambda: live_slugs(db),
            make_worker=make_worker,
            every_seconds=settings.dedicated_sweep_seconds,
            stop_seconds=settings.shutdown_grace_seconds,
        )
        embeds = task_queue == settings.pool_task_queue and settings.dedicated_workers == "embedded"
        # The outbox relay: starts and signals workflows once their transactions commit.
        relay = await build_relay(
            relay_db,
            keys=keys,
            settings=settings,
            dsn=libpq_dsn(application_url),
            admin_url=settings.database_url,
        )
        running = asyncio.create_task(worker.run())
        # It starts a relay for every other cell's outbox, and for each cell registered later.
        relaying = asyncio.create_task(relay.run(), name="outbox-relays")
        dedicating = asyncio.create_task(
            dedicated.run() if embeds else stopping.wait(), name="dedicated-workers"
        )
        upkeeping = asyncio.create_task(
            _upkeep(settings, db, client) if upkeep else stopping.wait()
        )
        if health is not None:
            health.polling = True
        log.info(
            "worker running",
            task_queue=task_queue,
            dedicated_queues="served here" if embeds else "not served here",
        )
        tell_ready(ready_fd)
        if on_ready is not None:
            on_ready()
        await asyncio.wait(
            [running, asyncio.create_task(stopping.wait())], return_when="FIRST_COMPLETED"
        )
        upkeeping.cancel()
        relaying.cancel()
        await cancel_within([dedicating])
        serving = dedicated.tasks()
        if not running.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(worker.shutdown(), dedicated.shutdown()), grace["seconds"]
                )
        # Bounded: past it the process ends anyway (the watchdog), saying which task held it.
        await cancel_within([running, relaying, upkeeping, *serving])
    finally:
        draining.cancel()
        if health is not None:
            await health.stop()
        await db.dispose()
        await relay_db.dispose()


def _checks(client, db: Database) -> dict:
    async def temporal() -> None:
        await client.service_client.check_health()

    async def database() -> None:
        async with db.control() as session:
            await session.execute(text("SELECT 1"))

    return {"temporal": temporal, "database": database}


def _serve_metrics(settings: Settings) -> None:
    """Alone in its container (`tenantry worker`), the worker answers /metrics on its own port;
    under `tenantry run` its counts reach the API's /metrics through the multiprocess files."""
    if os.environ.get(MULTIPROC_ENV):
        return
    port = settings.worker_metrics_port or settings.port
    try:
        start_http_server(port, addr=settings.host, registry=REGISTRY)
    except OSError as error:
        log.warning("worker metrics not served", port=port, error=error.strerror)


async def _upkeep(settings: Settings, db: Database, client) -> None:
    """Owner-side upkeep: the backup schedules synced once at start (whatever changed while no
    worker ran), and tenants that grew get their own HNSW index."""
    try:
        synced = await schedules.sync_all(db, client, settings)
        log.info("backup schedules synced", **{what: len(ids) for what, ids in synced.items()})
    except Exception:  # the relay's chore and `tenantry backup schedules sync` remain
        log.exception("backup schedule sync failed")
    while True:
        try:
            await asyncio.to_thread(
                promote, settings.database_url, threshold=settings.hnsw_threshold
            )
        except Exception:  # upkeep must never take the worker down; it retries next round
            log.exception("knowledge index promotion failed")
        await asyncio.sleep(UPKEEP_EVERY_SECONDS)


def _watchdog(seconds: float) -> None:
    """The SDK may keep retrying a Temporal that is gone; the process ends regardless."""

    def expire() -> None:
        log.warning("worker did not stop within its grace period; exiting", seconds=seconds)
        os._exit(0)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)
    die_with_parent()
    os.nice(10)
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    asyncio.run(serve(settings, args.ready_fd))
    exit_now()


def exit_now() -> None:
    log.info("worker stopped")
    # The Temporal SDK's runtime threads may still wait on a server that is gone; nothing is
    # left to do, so do not wait for them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
