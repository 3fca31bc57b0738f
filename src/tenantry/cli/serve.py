"""`tenantry run` (see `tenantry.runtime.supervisor`), and `tenantry worker` alone."""

from __future__ import annotations

import asyncio

import typer

from tenantry.observability.logging import configure_logging
from tenantry.runtime import supervisor, worker_process
from tenantry.settings import get_settings
from tenantry.stack import start_database
from tenantry.tenants.namespaces import dedicated_task_queue, tenant_namespace


def serve(*, services: bool = True) -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    raise typer.Exit(supervisor.serve(settings, services=services))


def run_worker(
    tenant: str | None, health_port: int | None = None, *, own_namespace: bool = False
) -> None:
    """A worker alone: the pool queue, or one tenant's dedicated queue. SIGTERM stops it within
    TENANTRY_SHUTDOWN_GRACE_SECONDS (see `tenantry.runtime.worker_process`)."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    if settings.temporal_address is None:
        settings = settings.model_copy(
            update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"}
        )
    queue = dedicated_task_queue(tenant) if tenant else settings.pool_task_queue
    namespace = tenant_namespace(tenant) if tenant and own_namespace else None
    stack = start_database(settings)
    settings = settings.model_copy(update={"database_url": stack.admin_url})
    where = namespace or settings.temporal_namespace
    announce = f"worker on task queue {queue} in namespace {where} ({settings.temporal_address})"
    try:
        asyncio.run(
            worker_process.serve(
                settings,
                task_queue=queue,
                namespace=namespace,
                upkeep=False,
                health_port=health_port,
                on_ready=lambda: typer.echo(announce),
            )
        )
    finally:
        stack.stop()
    worker_process.exit_now()
