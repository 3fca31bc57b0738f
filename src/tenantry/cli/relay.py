"""`tenantry relay`: the outbox relay alone, for a deployment that runs relays beside its workers
rather than only inside them (every worker process runs one too)."""

from __future__ import annotations

import asyncio
import contextlib

import typer

from tenantry.db.urls import libpq_dsn
from tenantry.keys.service import TenantKeys, platform_key
from tenantry.observability.logging import configure_logging
from tenantry.settings import get_settings
from tenantry.stack import start_database
from tenantry.worker.runner import build_relay, relay_database


def run_relay() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    if settings.temporal_address is None:
        settings = settings.model_copy(
            update={"temporal_address": f"127.0.0.1:{settings.temporal_port}"}
        )
    stack = start_database(settings)

    async def main() -> None:
        db = relay_database(stack.app_url, settings)
        try:
            relay = await build_relay(
                db,
                keys=TenantKeys(db, platform_key(settings)),
                settings=settings,
                dsn=libpq_dsn(stack.app_url),
                admin_url=stack.admin_url,
            )
            typer.echo(f"outbox relay for {settings.temporal_address}")
            await relay.run()
        finally:
            await db.dispose()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        stack.stop()
