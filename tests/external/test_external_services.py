"""The platform on external services named by settings alone: Debian's PostgreSQL (with pgvector,
on loopback, passwords over TCP), a Temporal server started on its own, and a `redis-server`;
two `tenantry serve` processes and a separate `tenantry worker`, all configured only by
TENANTRY_DATABASE_URL, TENANTRY_TEMPORAL_ADDRESS and TENANTRY_REDIS_URL.

Not the whole suite a second time (it would double CI's time): a representative end-to-end set
over HTTP, alternating between the two API processes, plus the database's own guarantees (the
catalog and RLS tests) run against this server. The embedded stack stays what `make run` and
`make test` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from tenantry.worker.devserver import TemporalDevServer
from tests.external.debian_postgres import DebianPostgres, require_debian_postgres
from tests.incidents.conftest import Receiver
from tests.runtime.helpers import gone
from tests.servers import free_port, start_redis, wait_for_line
from tests.workflows import started

pytestmark = [pytest.mark.slow, pytest.mark.external]
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-42-Battery"
BOILER = (
    "If the boiler does not start after a power cut, hold the reset button for three seconds "
    "and check that the pressure is between 1 and 1.5 bar."
)


@dataclass
class Platform:
    env: dict[str, str]
    apis: list[str]
    worker_health: str
    temporal_address: str
    postgres: DebianPostgres
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _turn: int = 0

    def api(self) -> str:
        """The next API process, in turn: consecutive calls land on different processes."""
        self._turn += 1
        return self.apis[self._turn % len(self.apis)]

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tenantry.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _settings_only(home: Path, postgres: DebianPostgres, temporal: str, redis: str) -> dict:
    """The environment of every process: nothing of the test session's embedded stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(
        TENANTRY_HOME=str(home),
        TENANTRY_ENVIRONMENT="test",
        TENANTRY_DATABASE_URL=postgres.url(),
        TENANTRY_APP_DB_PASSWORD=secrets.token_hex(16),
        TENANTRY_TEMPORAL_ADDRESS=temporal,
        TENANTRY_REDIS_URL=redis,
        TENANTRY_POOL_TASK_QUEUE=f"external-{uuid.uuid4().hex[:8]}",
        TENANTRY_JWT_SECRET=secrets.token_hex(32),
        TENANTRY_PLATFORM_KEY=secrets.token_urlsafe(48),
        TENANTRY_API_PROCESSES="1",
        TENANTRY_DRAIN_SECONDS="0",
        TENANTRY_LOG_JSON="false",
        TENANTRY_EGRESS_ALLOWLIST='["127.0.0.1"]',
    )
    return env


def _start(env: dict[str, str], *args: str, ready: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    wait_for_line(process, ready, "stdout")
    import threading

    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    bin_dir = require_debian_postgres()
    folder = Path(tempfile.mkdtemp(prefix="tenantry-external-"))
    postgres = DebianPostgres.start(bin_dir)
    temporal = TemporalDevServer(folder / "temporal", port=free_port())
    temporal.launch()
    redis, redis_url = start_redis(folder)
    running: dict[str, subprocess.Popen] = {}
    try:
        address = asyncio.run(temporal.start_launched())
        env = _settings_only(folder / "home", postgres, address, redis_url)
        platform = Platform(env, [], "", address, postgres, running)
        platform.cli("migrate")
        for n in (1, 2):
            port = free_port()
            running[f"api-{n}"] = _start(
                {**env, "TENANTRY_PORT": str(port)}, "serve", ready="Ctrl-C stops everything."
            )
            platform.apis.append(f"http://127.0.0.1:{port}")
        health_port = free_port()
        running["worker"] = _start(
            env, "worker", "--health-port", str(health_port), ready="worker on task queue"
        )
        platform.worker_health = f"http://127.0.0.1:{health_port}"
        yield platform
    finally:
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.terminate()
        redis.wait(timeout=10)
        temporal.stop()
        postgres.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Tenant:
    slug: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def operator(platform: Platform) -> dict[str, str]:
    """An operator created with the CLI against the external database, logged in over HTTP."""
    email = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    platform.cli(
        "operators", "create", "--email", email, "--name", "Ops", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    login = httpx.post(
        f"{platform.api()}/v1/admin/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def make_tenant(platform: Platform, operator: dict[str, str], tier: str = "standard") -> Tenant:
    slug = f"ext-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{platform.api()}/v1/admin/tenants",
        json={"slug": slug, "name": "External", "tier": tier},
        headers=operator,
    )
    assert created.status_code == 201, created.text
    email = f"admin@{slug}.example"
    user = httpx.post(
        f"{platform.api()}/v1/admin/tenants/{slug}/users",
        json={"email": email, "password": PASSWORD, "role": "admin"},
        headers=operator,
    )
    assert user.status_code == 201, user.text
    login = httpx.post(
        f"{platform.api()}/v1/auth/login",
        json={"tenant": slug, "email": email, "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    return Tenant(slug, {"Authorization": f"Bearer {login.json()['access_token']}"})


@contextlib.asynccontextmanager
async def _temporal(platform: Platform):
    """A Temporal client holding the tenants' data keys, as the API and the worker do: workflow
    payloads are encrypted per tenant."""
    from tenantry.db.session import Database, create_app_engine
    from tenantry.db.urls import app_url
    from tenantry.keys.service import TenantKeys, platform_key
    from tenantry.settings import Settings
    from tenantry.worker.client import connect

    settings = Settings(
        home=platform.env["TENANTRY_HOME"],
        database_url=platform.env["TENANTRY_DATABASE_URL"],
        app_db_password=platform.env["TENANTRY_APP_DB_PASSWORD"],
        platform_key=platform.env["TENANTRY_PLATFORM_KEY"],
    )
    db = Database(
        create_app_engine(app_url(settings, settings.database_url), pool_size=1, max_overflow=0)
    )
    try:
        yield await connect(platform.temporal_address, keys=TenantKeys(db, platform_key(settings)))
    finally:
        await db.dispose()


def test_the_services_are_the_external_ones(platform: Platform):
    assert "Debian" in platform.postgres.version()
    for base in platform.apis:
        ready = httpx.get(f"{base}/health/ready")
        assert ready.status_code == 200, ready.text
    assert httpx.get(f"{platform.worker_health}/health/live").status_code == 200
    worker_ready = httpx.get(f"{platform.worker_health}/health/ready")
    assert worker_ready.status_code == 200 and worker_ready.json()["status"] == "ok"


def test_users_api_keys_and_configuration_across_both_processes(platform, operator):
    tenant = make_tenant(platform, operator)
    key = httpx.post(
        f"{platform.api()}/v1/api-keys",
        json={"name": "ci", "scopes": ["admin"]},
        headers=tenant.headers,
    )
    assert key.status_code == 201, key.text
    by_key = {"X-API-Key": key.json()["key"]}
    for _ in platform.apis:  # each process knows the key and the user
        me = httpx.get(f"{platform.api()}/v1/me", headers=by_key)
        assert me.status_code == 200 and me.json()["tenant"] == tenant.slug
    changed = httpx.patch(
        f"{platform.api()}/v1/config", json={"language": "spanish"}, headers=by_key
    )
    assert changed.status_code == 200, changed.text
    # The other process sees the change (pushed through PostgreSQL's NOTIFY).
    shown = httpx.get(f"{platform.api()}/v1/config", headers=tenant.headers)
    assert shown.json()["config"]["language"] == "spanish"
    member = httpx.post(
        f"{platform.api()}/v1/users",
        json={"email": f"m@{tenant.slug}.example", "password": PASSWORD, "role": "member"},
        headers=by_key,
    )
    assert member.status_code == 201, member.text
    users = httpx.get(f"{platform.api()}/v1/users", headers=tenant.headers).json()["items"]
    assert {u["email"] for u in users} == {
        f"admin@{tenant.slug}.example",
        f"m@{tenant.slug}.example",
    }


async def test_a_document_is_ingested_by_the_worker_and_searched(platform, operator):
    tenant = make_tenant(platform, operator)
    async with httpx.AsyncClient(timeout=60) as http:
        posted = await http.post(
            f"{platform.api()}/v1/documents",
            json={"title": "Boiler reset", "text": BOILER},
            headers=tenant.headers,
        )
    assert posted.status_code == 202, posted.text
    document = posted.json()["id"]
    async with _temporal(platform) as client:
        handle = await started(client, f"{tenant.slug}/ingest/{document}")
        assert await handle.result() == "ready"
    async with httpx.AsyncClient(timeout=60) as http:
        found = await http.post(
            f"{platform.api()}/v1/search",
            json={"query": "the boiler will not start after a power cut"},
            headers=tenant.headers,
        )
    assert found.status_code == 200, found.text
    assert found.json()["hits"][0]["document_id"] == document


async def test_an_approved_incident_delivers_its_webhook(platform, operator):
    tenant = make_tenant(platform, operator)
    receiver = Receiver()
    http = httpx.AsyncClient(timeout=60)
    try:
        hook = await http.post(
            f"{platform.api()}/v1/webhooks",
            json={"url": receiver.url, "events": ["incident.resolved"]},
            headers=tenant.headers,
        )
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        # A proposal is approved only when it cites the knowledge base: give it something to cite.
        posted = await http.post(
            f"{platform.api()}/v1/documents",
            json={"title": "Boiler reset", "text": BOILER},
            headers=tenant.headers,
        )
        assert posted.status_code == 202, posted.text
        async with _temporal(platform) as client:
            ingest = await started(client, f"{tenant.slug}/ingest/{posted.json()['id']}")
            assert await ingest.result() == "ready"
        reported = await http.post(
            f"{platform.api()}/v1/incidents",
            json={
                "title": "Boiler does not start",
                "description": "The boiler will not start after a power cut; no heat.",
            },
            headers=tenant.headers,
        )
        assert reported.status_code == 201, reported.text
        number = reported.json()["number"]
        workflow = f"{tenant.slug}/incident/{number.removeprefix('INC-')}"
        async with _temporal(platform) as client:
            # The worker's outbox relay starts it once the report has committed.
            handle = await started(client, workflow)
            await _until_awaiting_approval(handle)
            approved = await http.post(
                f"{platform.api()}/v1/incidents/{number}/approve", headers=tenant.headers
            )
            assert approved.status_code == 202, approved.text
            assert await handle.result() == "approved"
        [delivery] = await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        await http.aclose()
        receiver.close()
    assert delivery["valid"]
    assert delivery["body"]["type"] == "incident.resolved"
    assert delivery["body"]["data"]["number"] == number


async def _until_awaiting_approval(handle) -> None:
    """Ask the workflow (a query the worker answers) until it waits for a person."""
    for _ in range(600):
        state = await handle.query("state")
        if state["waiting_for_person"] and state["status"] == "awaiting_approval":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never waited for a person: {state}")


def test_a_tenants_rate_limit_is_counted_once_for_both_processes(platform, operator):
    tenant = make_tenant(platform, operator)
    limited = httpx.patch(
        f"{platform.api()}/v1/admin/tenants/{tenant.slug}/limits",
        json={"requests_per_minute": 10},
        headers=operator,
    )
    assert limited.status_code == 200, limited.text
    statuses = [
        httpx.get(f"{platform.api()}/v1/me", headers=tenant.headers).status_code for _ in range(14)
    ]
    # Seven requests on each process: alone, each would have allowed all seven.
    assert statuses.count(200) == 10 and statuses.count(429) == 4


def test_lists_stay_within_their_tenant(platform, operator):
    first, second = make_tenant(platform, operator), make_tenant(platform, operator)
    mine = {}
    for tenant in (first, second):
        key = httpx.post(
            f"{platform.api()}/v1/api-keys",
            json={"name": tenant.slug, "scopes": ["read"]},
            headers=tenant.headers,
        )
        assert key.status_code == 201, key.text
        mine[tenant.slug] = key.json()["id"]
    for tenant, other in ((first, second), (second, first)):
        for base in platform.apis:
            keys = httpx.get(f"{base}/v1/api-keys", headers=tenant.headers).json()["items"]
            assert mine[tenant.slug] in {k["id"] for k in keys}
            assert mine[other.slug] not in {k["id"] for k in keys}
            users = httpx.get(f"{base}/v1/users", headers=tenant.headers).json()["items"]
            assert {u["email"] for u in users} == {f"admin@{tenant.slug}.example"}


def test_the_catalog_and_rls_tests_hold_on_this_postgresql(platform: Platform):
    """The database's own guarantees (forced RLS on every tenant table, the app role's limits),
    checked by the same tests as on the embedded server, in a database of their own here."""
    database = f"catalog_{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(platform.postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(
        TENANTRY_TEST_DATABASE_URL=platform.postgres.url(database),
        TENANTRY_APP_DB_PASSWORD=platform.env["TENANTRY_APP_DB_PASSWORD"],
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/db/test_catalog.py", "tests/db/test_rls.py"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout


def test_the_worker_stops_in_order_on_sigterm(platform: Platform):
    """Last in the module: it stops the worker. SIGTERM is a graceful stop (polling ends,
    running activities get their grace, exit status 0), not the default signal death."""
    worker = platform.processes["worker"]
    children = psutil.Process(worker.pid).children(recursive=True)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=90) == 0
    assert gone(children) == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{platform.worker_health}/health/live", timeout=2)
