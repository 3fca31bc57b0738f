"""One embedded PostgreSQL per test session; the app runs as `tenantry_app`, so RLS applies.

TENANTRY_TEST_DATABASE_URL names another PostgreSQL (an empty database and a superuser) to run
the tests against instead; tests/external/ runs the catalog and RLS tests that way against
Debian's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient

from tenantry.db.session import Database
from tenantry.db.urls import libpq_dsn
from tenantry.runtime.stopping import cancel_within
from tenantry.settings import Settings, get_settings
from tenantry.stack import Stack, start_database
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate
from tenantry.worker.devserver import TemporalDevServer
from tests.servers import free_port

OPERATOR_TOKEN = "tnop_test-operator-" + uuid.uuid4().hex


# Every process holds a LISTEN connection per registered cell, and a worker an outbox relay per
# cell: the session registers a dozen cells and runs two stacks at once (the fuzzed one), past
# PostgreSQL's default of 100 connections.
TEST_MAX_CONNECTIONS = 300


def _with_connections(started: Stack, settings: Settings) -> Stack:
    """The session's embedded server, restarted once with room for TEST_MAX_CONNECTIONS."""
    from tenantry.db import bootstrap
    from tenantry.db.urls import app_url

    if started.embedded is None:
        return started
    with psycopg.connect(libpq_dsn(started.admin_url), autocommit=True) as conn:
        if int(conn.execute("SHOW max_connections").fetchone()[0]) >= TEST_MAX_CONNECTIONS:
            return started
        conn.execute(f"ALTER SYSTEM SET max_connections = {TEST_MAX_CONNECTIONS}")
    admin_url = bootstrap.bootstrap(settings, started.embedded.restart())
    return Stack(settings, admin_url, app_url(settings, admin_url), started.embedded)


@pytest.fixture(scope="session")
def stack() -> Stack:
    home = Path(tempfile.mkdtemp(prefix="tenantry-test-"))
    settings = Settings(
        home=home,
        environment="test",
        demo_tenants=False,
        bootstrap_token=OPERATOR_TOKEN,
        database_url=os.environ.get("TENANTRY_TEST_DATABASE_URL"),
    )
    started = _with_connections(start_database(settings), settings)
    # The same dev server `tenantry run` starts, once for the whole session.
    temporal = TemporalDevServer(home / "temporal", port=free_port())
    temporal.launch()
    # Everything after this (the app, the CLI, subprocesses) sees the test database as external.
    os.environ.update(
        TENANTRY_DATABASE_URL=started.admin_url,
        TENANTRY_HOME=str(home),
        TENANTRY_ENVIRONMENT="test",
        TENANTRY_DEMO_TENANTS="false",
        TENANTRY_BOOTSTRAP_TOKEN=OPERATOR_TOKEN,
        TENANTRY_LOG_JSON="true",
        # The tests run blocking SQL on the event loop to inspect the database; that lag is theirs,
        # not the platform's. Shedding by lag is tested with its own monitor.
        TENANTRY_LOOP_LAG_THRESHOLD_MS="60000",
        TENANTRY_TEMPORAL_ADDRESS=temporal.address,
        # A fresh task queue per session, so nothing of an earlier run is picked up.
        TENANTRY_POOL_TASK_QUEUE=f"test-pool-{uuid.uuid4().hex[:8]}",
        TENANTRY_HNSW_THRESHOLD="1000000",
        # Most tests run the app with no worker polling its queue; readiness following the
        # workers is tested with its own window (tests/observability/test_ready_workers.py).
        TENANTRY_READY_WORKER_STALE_SECONDS="0",
        # The tests' webhook receivers and LLM servers listen on loopback.
        TENANTRY_EGRESS_ALLOWLIST='["127.0.0.1"]',
        TENANTRY_LLM_PROVIDERS='["none", "ollama", "openai"]',
    )
    get_settings.cache_clear()
    yield started
    temporal.stop()
    started.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def keys(db, settings):
    """The tenants' data keys, as the API and the worker hold them."""
    from tenantry.keys.service import TenantKeys, platform_key

    return TenantKeys(db, platform_key(settings))


@pytest.fixture(scope="session")
def sdk_metrics():
    """The Temporal runtime of the session's client and worker, its SDK metrics drained into the
    registry, as a worker process does."""
    from tenantry.observability.temporal_sdk import SdkMetrics

    return SdkMetrics()


@pytest.fixture(scope="session")
async def temporal_client(stack, settings, keys, sdk_metrics):
    from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

    from tenantry.worker.client import connect

    async for attempt in AsyncRetrying(
        stop=stop_after_delay(60), wait=wait_fixed(0.25), reraise=True
    ):
        with attempt:
            client = await connect(
                settings.temporal_address, keys=keys, runtime=sdk_metrics.runtime
            )
    draining = asyncio.create_task(sdk_metrics.run())
    yield client
    draining.cancel()


@pytest.fixture(scope="session")
async def embedder(settings):
    from tenantry.knowledge.embeddings import checked_embedder

    return await checked_embedder(settings)


@pytest.fixture(scope="session")
async def worker(temporal_client, stack, settings, embedder, keys):
    """One worker process's work on the session's pool queue: the worker and the outbox relay."""
    from tenantry.db.urls import libpq_dsn
    from tenantry.worker.runner import WorkerProcess, build_relay, build_worker, relay_database

    db = stack.database(pool_size=4)
    # As in a worker process: the relay has a pool of its own (the keys are the process's).
    relay_db = relay_database(stack.app_url, settings)
    relay = await build_relay(
        relay_db,
        keys=keys,
        settings=settings,
        dsn=libpq_dsn(stack.app_url),
        admin_url=stack.admin_url,
    )
    running = WorkerProcess(
        build_worker(
            temporal_client,
            task_queue=settings.pool_task_queue,
            db=db,
            embedder=embedder,
            settings=settings,
        ),
        relay,
    )
    running.activities_db = db  # for tests that exhaust the activities' connections
    task = asyncio.create_task(running.run())
    await relay.listening.wait()
    yield running
    # Bounded, as in a worker process: an activity stuck at the session's end must not hang it.
    if await running.shutdown():
        await asyncio.gather(task, return_exceptions=True)
    else:
        await cancel_within([task])
    await db.dispose()
    await relay_db.dispose()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return get_settings()


@pytest.fixture
def store(settings: Settings):
    """The platform's backup store, as configured (a folder under the test home)."""
    from tenantry.ops.store import BackupStore

    return BackupStore.of(settings)


@pytest.fixture(scope="session")
async def db(stack: Stack) -> AsyncIterator[Database]:
    database = stack.database(pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(stack: Stack, settings: Settings, temporal_client):
    from tenantry.app import create_app
    from tenantry.stack import provision_defaults

    await provision_defaults(stack)
    application = create_app(settings, database_url=stack.app_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncClient]:
    # Each test calls from its own address, so login throttling per address stays per test.
    address = f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"
    transport = ASGITransport(app=app, client=(address, 50000))
    async with AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


PASSWORD = "Correct-Horse-42-Battery"


@pytest.fixture
def bootstrap_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="session")
async def operator_headers(app) -> dict[str, str]:
    """An operator created with the bootstrap token, logged in with a password."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:
        email = f"ops-{uuid.uuid4().hex[:8]}@tenantry.dev"
        created = await c.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Ops", "password": PASSWORD},
            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        token = await c.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
        assert token.status_code == 200, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture
def make_tenant_sync():
    """For synchronous (CLI) tests: a tenant created through the CLI itself; returns its slug."""
    from typer.testing import CliRunner

    from tenantry.cli.main import app as cli

    def make(tier: str = "standard") -> str:
        slug = unique_slug("cli")
        result = CliRunner().invoke(
            cli, ["tenants", "create", slug, "--name", "Cli", "--tier", tier]
        )
        assert result.exit_code == 0, result.output
        return slug

    return make


@pytest.fixture
def make_user(db: Database):
    """A user of `tenant` with `role`, created through the service; returns the user."""
    from tenantry.identity import users
    from tenantry.identity.schemas import UserCreate

    async def make(tenant, role: str = "member", email: str | None = None):
        data = UserCreate(
            email=email or f"{role}-{uuid.uuid4().hex[:8]}@example.com",
            password=PASSWORD,
            role=role,
        )
        async with db.tenant(tenant.id) as session:
            return await users.create(
                session, tenant_id=tenant.id, data=data, actor="test", actor_role=None
            )

    return make


async def login(client: AsyncClient, tenant, user, password: str = PASSWORD) -> dict:
    response = await client.post(
        "/v1/auth/login", json={"tenant": tenant.slug, "email": user.email, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def all_items(client: AsyncClient, url: str, headers: dict, **params) -> list[dict]:
    """Every item of a list, following `next_cursor` page by page."""
    items: list[dict] = []
    cursor = None
    while True:
        response = await client.get(
            url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def cli_json(output: str):
    """What a CLI command printed (`emit`: indented JSON from a line of its own `{` to a line of
    its own `}`), apart from log lines that other threads of the test process wrote to stdout
    while the runner held it."""
    found = re.search(r"^[{\[]\n.*?^[}\]]$", output, re.MULTILINE | re.DOTALL)
    assert found, output
    return json.loads(found.group())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_sql(stack: Stack):
    """A superuser connection, to look at every tenant's rows at once when asserting."""
    with psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True) as conn:
        yield conn


def unique_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_tenant(db: Database, settings: Settings):
    async def make(slug: str | None = None, tier: str = "standard"):
        data = TenantCreate(slug=slug or unique_slug(), name="Test tenant", tier=tier)
        async with db.control() as session:
            return await tenants.create(session, data=data, actor="test", settings=settings)

    return make


@pytest.fixture
def operator_config(db: Database, settings: Settings):
    """Change a tenant's configuration as an operator does (`tenantry config set`): the way to
    settings a tenant may not choose itself, such as `features.dedicated_workers`."""
    from tenantry.config import service as config_service
    from tenantry.tenants.tiers import effective_limits

    async def change(tenant, patch: dict):
        async with db.tenant(tenant.id) as session:
            return await config_service.patch_tenant(
                session,
                tenant_id=tenant.id,
                tier=tenant.tier,
                cache_prefix=tenant.cache_prefix,
                patch=patch,
                author="operator:test",
                settings=settings,
                limits=effective_limits(tenant.tier, tenant.limit_overrides),
                by_operator=True,
            )

    return change


@pytest.fixture
async def dedicated_tenant(client, make_tenant, make_user, operator_config):
    """A tenant whose work goes to its own task queue, which only a test's `dedicated_worker`
    serves; and its admin's headers."""
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    return tenant, headers


@pytest.fixture
def dedicated_worker(temporal_client, stack, embedder, settings):
    """`dedicated_worker(tenant, SomeIncidentActivities)`: see `tests.workflows`."""
    from tests.workflows import dedicated_worker as run

    return functools.partial(run, temporal_client, stack, embedder=embedder, settings=settings)


@pytest.fixture
def outbox_late_never(monkeypatch):
    """For tests of `/health/detailed` that are not about the outbox: the session's outbox holds
    what earlier tests left undelivered (many run with no relay), which would read as late once the
    session is older than the threshold. The delay itself is tested in tests/observability."""
    from tenantry.observability import components

    monkeypatch.setattr(components, "OUTBOX_LATE_SECONDS", float("inf"))
