"""A second cell: another database in the test session's embedded server, created and migrated
as `tenantry cells add` does."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tenantry.db.urls import libpq_dsn
from tenantry.tenants import cells
from tenantry.worker.runner import CellRelays


@pytest.fixture(scope="session")
async def cell_b(stack, settings, db) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    location = cells.check(settings, name=name, database=name.replace("-", "_"), url_env=None)
    cells.provision(settings, stack.admin_url, location)
    async with db.control() as session:
        await cells.register(session, name=name, location=location)
    return name


@pytest.fixture
async def cell_relays(worker, cell_b):
    """The registered cells' own relays, delivering their outboxes: the session worker's main
    relay starts one per cell (`CellRelays`, a chore of its sweep), as a worker process does;
    here that sweep's chore is run at once, and each relay is listening before the test goes on."""
    (chore,) = [c for c in worker.relay.chores if isinstance(c, CellRelays)]
    await chore()
    relays = list(chore.relays.values())
    for relay in relays:
        await relay.listening.wait()
    return relays


@pytest.fixture(scope="session")
async def cell_silo(stack, settings, db) -> str:
    """A silo cell: a tenant moved there gets its own task queue and worker."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    location = cells.check(settings, name=name, database=name.replace("-", "_"), url_env=None)
    cells.provision(settings, stack.admin_url, location)
    async with db.control() as session:
        await cells.register(session, name=name, location=location, kind=cells.SILO)
    return name


def cell_admin_url(stack, cell: str) -> str:
    return (
        make_url(stack.admin_url)
        .set(database=cell.replace("-", "_"))
        .render_as_string(hide_password=False)
    )


def count_rows(url: str, table: str, tenant_id) -> int:
    """As a superuser: how many rows of the tenant the table holds in that database."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        return conn.execute(
            f'SELECT count(*) FROM "{table}" WHERE tenant_id = %s', [tenant_id]
        ).fetchone()[0]
