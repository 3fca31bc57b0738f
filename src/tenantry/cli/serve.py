"""`tenantry run` (see `tenantry.runtime.supervisor`), and `tenantry worker` alone."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from tenantry.knowledge.embeddings import checked_embedder
from tenantry.observability.logging import configure_logging
from tenantry.runtime import supervisor
from tenantry.settings import Settings, get_settings
from tenantry.stack import Stack, start_database
from tenantry.tenants.namespaces import dedicated_task_queue
from tenantry.worker.client import connect
from tenantry.worker.runner import build_worker


def serve(*, services: bool = True) -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    raise typer.Exit(supervisor.serve(settings, services=services))


@contextlib.asynccontextmanager
async def _worker(stack: Stack, settings: Settings, task_queue: str):
    db = stack.database(pool_size=4)
    try:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        embedder = await checked_embedder(settings)
        yield build_worker(
            client, task_queue=task_queue, db=db, embedder=embedder, settings=settings
        )
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
