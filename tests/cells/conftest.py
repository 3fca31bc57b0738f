"""A second cell: another database in the test session's embedded server, created and migrated
as `tenantry cells add` does."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tenantry.db.urls import libpq_dsn
from tenantry.runtime.stopping import cancel_within
from tenantry.tenants import cells
from tenantry.worker.runner import build_cell_relays


@pytest.fixture(scope="session")
async def cell_b(stack, settings, db) -> str:
    name = f"b-{uuid.uuid4().hex[:8]}"
    location = cells.check(settings, name=name, database=name.replace("-", "_"), url_env=None)
    cells.provision(settings, stack.admin_url, location)
    async with db.control() as session:
        await cells.register(session, name=name, location=location)
    return name


@pytest.fixture
async def cell_relays(db, keys, settings, cell_b):
    """The registered cells' own relays, delivering their outboxes, as a worker process runs
    one per cell (the session's worker relays the main cell's)."""
    relays = await build_cell_relays(db, keys=keys, settings=settings)
    relaying = [asyncio.create_task(relay.run()) for relay in relays]
    for relay in relays:
        await relay.listening.wait()
    yield relays
    await cancel_within(relaying)


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
