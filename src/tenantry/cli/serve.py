"""`tenantry run`: the whole local stack in the foreground, and `tenantry worker` alone."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
import typer
import uvicorn

from tenantry.app import create_app
from tenantry.knowledge.embeddings import checked_embedder
from tenantry.knowledge.promotion import promote
from tenantry.observability.logging import configure_logging
from tenantry.settings import Settings, get_settings
from tenantry.stack import FirstStart, Stack, provision_defaults, start_database
from tenantry.tenants.namespaces import dedicated_task_queue
from tenantry.worker.client import connect
from tenantry.worker.devserver import TemporalDevServer
from tenantry.worker.runner import build_worker

log = structlog.get_logger("tenantry.run")


def serve() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    stack = start_database(settings)
    try:
        first = asyncio.run(provision_defaults(stack))
        # uvicorn re-raises Ctrl-C after its graceful shutdown; ours follows in `finally`.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(stack, settings, first))
    finally:
        stack.stop()
        typer.echo("Tenantry stopped.")


async def _serve(stack: Stack, settings: Settings, first: FirstStart) -> None:
    devserver = None
    if settings.temporal_address is None:
        devserver = TemporalDevServer(settings.home / "temporal", port=settings.temporal_port)
        settings = settings.model_copy(update={"temporal_address": await devserver.start()})
    try:
        app = create_app(settings, database_url=stack.app_url)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        _banner(settings, first)
        if not settings.run_worker:
            await server.serve()
            return
        async with _worker(stack, settings, settings.pool_task_queue) as worker:
            background = [
                asyncio.create_task(worker.run()),
                asyncio.create_task(_maintain(stack, settings)),
            ]
            try:
                await server.serve()
            finally:
                await worker.shutdown()
                background[1].cancel()
                await asyncio.gather(*background, return_exceptions=True)
    finally:
        if devserver is not None:
            devserver.stop()


async def _maintain(stack: Stack, settings: Settings, every_seconds: float = 300) -> None:
    """Owner-side upkeep while the stack runs: tenants that grew get their own HNSW index."""
    while True:
        try:
            await asyncio.to_thread(promote, stack.admin_url, threshold=settings.hnsw_threshold)
        except Exception:  # upkeep must never take the API down; it retries next round
            log.exception("knowledge index promotion failed")
        await asyncio.sleep(every_seconds)


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


def _banner(settings: Settings, first: FirstStart) -> None:
    base = f"http://{settings.host}:{settings.port}"
    where = (
        f"embedded PostgreSQL under {settings.home}" if settings.embedded else "external PostgreSQL"
    )
    lines = [
        f"Tenantry on {base} ({where}; Temporal at {settings.temporal_address})",
        f"  API docs  {base}/docs",
        f"  health    {base}/health/ready",
        f"  metrics   {base}/metrics",
    ]
    if first.generated_token:
        lines += [
            "",
            "  Operator bootstrap token (shown once, stored hashed):",
            f"    {first.generated_token}",
        ]
    if first.demo_tenants:
        lines.append(f"  demo tenants: {', '.join(first.demo_tenants)}")
    typer.echo("\n".join(lines))
