"""`tenantry run` (see `tenantry.runtime.supervisor`), and `tenantry worker` alone."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from tenantry.db.urls import libpq_dsn
from tenantry.keys.service import TenantKeys, platform_key
from tenantry.knowledge.embeddings import checked_embedder
from tenantry.observability.logging import configure_logging
from tenantry.runtime import supervisor
from tenantry.settings import Settings, get_settings
from tenantry.stack import Stack, start_database
from tenantry.tenants.namespaces import dedicated_task_queue
from tenantry.worker.client import connect
from tenantry.worker.runner import WorkerProcess, build_relay, build_worker


def serve(*, services: bool = True) -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    raise typer.Exit(supervisor.serve(settings, services=services))


@contextlib.asynccontextmanager
async def _worker(stack: Stack, settings: Settings, task_queue: str):
    """The Temporal worker and the outbox relay of one worker process."""
    db = stack.database(pool_size=4)
    try:
        keys = TenantKeys(db, platform_key(settings))
        client = await connect(settings.temporal_address, settings.temporal_namespace, keys=keys)
        embedder = await checked_embedder(settings)
        relay = await build_relay(
            db,
            keys=keys,
            settings=settings,
            dsn=libpq_dsn(stack.app_url),
            admin_url=stack.admin_url,
        )
        worker = build_worker(
            client, task_queue=task_queue, db=db, embedder=embedder, settings=settings
        )
        yield WorkerProcess(worker, relay)
    finally:
        await db.dispose()


def run_worker(tenant: str | None) -> None:
    """A worker alone: the pool queue, or one tenant's dedicated queue."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    if settings.temporal_address is None:
        settings = settings.model_copy(
            update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"}
        )
    queue = dedicated_task_queue(tenant) if tenant else settings.pool_task_queue
    stack = start_database(settings)

    async def main() -> None:
        async with _worker(stack, settings, queue) as worker:
            typer.echo(f"worker on task queue {queue} ({settings.temporal_address})")
            await worker.run()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        stack.stop()
