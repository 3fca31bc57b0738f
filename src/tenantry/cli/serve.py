"""`tenantry run`: the whole local stack in the foreground."""

from __future__ import annotations

import asyncio
import contextlib

import typer
import uvicorn

from tenantry.app import create_app
from tenantry.observability.logging import configure_logging
from tenantry.settings import get_settings
from tenantry.stack import provision_defaults, start_database


def serve() -> None:
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    stack = start_database(settings)
    try:
        first = asyncio.run(provision_defaults(stack))
        _banner(settings, first)
        app = create_app(settings, database_url=stack.app_url)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        # uvicorn re-raises Ctrl-C after its graceful shutdown; ours follows in `finally`.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
    finally:
        stack.stop()
        typer.echo("Tenantry stopped.")


def _banner(settings, first) -> None:
    base = f"http://{settings.host}:{settings.port}"
    where = (
        "embedded PostgreSQL under " + str(settings.home)
        if settings.embedded
        else "external PostgreSQL"
    )
    lines = [
        f"Tenantry on {base} ({where})",
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
    typer.echo("\n".join(lines), err=False)
