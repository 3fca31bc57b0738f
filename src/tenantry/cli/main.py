"""The `tenantry` command."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli import audit, backup, cells, config, identity, knowledge, pitr, tenants
from tenantry.cli.common import opened_stack
from tenantry.observability.logging import configure_logging
from tenantry.settings import get_settings

app = typer.Typer(help="Tenantry: one platform, many isolated tenants.", no_args_is_help=True)
app.add_typer(tenants.app, name="tenants")
app.add_typer(audit.app, name="audit")
app.add_typer(backup.app, name="backup")
app.add_typer(pitr.app, name="pitr")
app.add_typer(cells.app, name="cells")
app.add_typer(identity.users, name="users")
app.add_typer(identity.operators_app, name="operators")
app.add_typer(config.config_app, name="config")
app.add_typer(config.limits_app, name="limits")
app.add_typer(knowledge.app, name="knowledge")


@app.callback()
def logs_to_stderr() -> None:
    """Commands print their answer on stdout; what they log (an audit anchor, say) goes to
    stderr, as the services' logs do."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)


@app.command()
def run() -> None:
    """Start the stack (PostgreSQL, migrations) and serve the API until Ctrl-C."""
    from tenantry.cli.serve import serve

    serve()


@app.command(name="serve")
def serve_api() -> None:
    """Serve the API only (TENANTRY_API_PROCESSES processes) against an external PostgreSQL,
    Temporal and Redis: the container entry point. SIGTERM drains, then stops."""
    from tenantry.cli.serve import serve

    serve(services=False)


@app.command()
def worker(
    tenant: Annotated[str | None, typer.Option(help="Serve this tenant's dedicated queue.")] = None,
    own_namespace: Annotated[
        bool,
        typer.Option(
            envvar="TENANTRY_WORKER_OWN_NAMESPACE",
            help="With --tenant: poll in the tenant's own Temporal namespace (features.own_namespace).",
        ),
    ] = False,
    health_port: Annotated[
        int | None,
        typer.Option(
            envvar="TENANTRY_WORKER_HEALTH_PORT",
            help="Answer /health/live and /health/ready on this port (on TENANTRY_HOST).",
        ),
    ] = None,
) -> None:
    """Run a Temporal worker (the pool queue, or `tenant-SLUG-jobs` with --tenant). SIGTERM
    stops polling and gives running activities TENANTRY_SHUTDOWN_GRACE_SECONDS."""
    from tenantry.cli.serve import run_worker

    if own_namespace and tenant is None:
        raise typer.BadParameter("needs --tenant", param_hint="--own-namespace")
    run_worker(tenant, health_port, own_namespace=own_namespace)


@app.command()
def relay() -> None:
    """Run the outbox relay alone (every worker process also runs one)."""
    from tenantry.cli.relay import run_relay

    run_relay()


@app.command()
def migrate() -> None:
    """Create roles and apply migrations, then exit."""
    with opened_stack() as stack:
        typer.echo(f"database ready at revision head ({stack.admin_url.split('?')[0]})")
