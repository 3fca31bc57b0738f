"""PostgreSQL stopped under requests: every route that needs it answers 503 problem+json with
Retry-After, every 5xx carries X-Request-ID and its log line the same id, and service resumes when
the database is back. The test stops and starts a PostgreSQL of its own."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest
from httpx import ASGITransport, AsyncClient

from tenantry.app import create_app
from tenantry.observability.logging import configure_logging
from tenantry.settings import Settings
from tenantry.stack import provision_defaults, start_database
from tests.conftest import OPERATOR_TOKEN, PASSWORD

pytestmark = pytest.mark.slow


def _postmaster(pgdata) -> psutil.Process:
    return psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))


@pytest.fixture(scope="module")
async def own_stack():
    # Not under pytest's tmp_path: a pytest starting elsewhere makes that 0700, and the embedded
    # server runs as another user when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="tenantry-down-"))
    settings = Settings(
        home=home,
        environment="test",
        database_url=None,
        temporal_address=None,
        redis_url=None,
        demo_tenants=False,
        bootstrap_token=OPERATOR_TOKEN,
        loop_lag_threshold_ms=60_000,  # the test's own blocking calls are not the platform's lag
    )
    stack = start_database(settings)
    try:
        await provision_defaults(stack)
        yield settings, stack
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
async def own_app(own_stack):
    settings, stack = own_stack
    app = create_app(settings, database_url=stack.app_url)

    async def boom():
        raise RuntimeError("a bug")

    app.add_api_route("/v1/boom", boom)
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://test") as c,
    ):
        yield c, stack


async def _tenant_and_key(c: AsyncClient) -> tuple[dict, dict, dict]:
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    email = f"ops-{uuid.uuid4().hex[:6]}@tenantry.dev"
    account = {"email": email, "name": "Ops", "password": PASSWORD}
    assert (await c.post("/v1/admin/operators", json=account, headers=operator)).status_code == 201
    token = (
        await c.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
    ).json()
    ops = {"Authorization": f"Bearer {token['access_token']}"}
    slug = f"down-{uuid.uuid4().hex[:6]}"
    created = await c.post(
        "/v1/admin/tenants", json={"slug": slug, "name": "Down", "tier": "standard"}, headers=ops
    )
    assert created.status_code == 201, created.text
    owner = {"email": f"owner@{slug}.example", "password": PASSWORD, "role": "owner"}
    assert (
        await c.post(f"/v1/admin/tenants/{slug}/users", json=owner, headers=ops)
    ).status_code == 201
    login = {"tenant": slug, "email": owner["email"], "password": PASSWORD}
    access = (await c.post("/v1/auth/login", json=login)).json()["access_token"]
    user = {"Authorization": f"Bearer {access}"}
    key = await c.post("/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=user)
    return ops, user, {"X-API-Key": key.json()["key"]}, login


def _log_lines(err: str) -> list[dict]:
    lines = []
    for line in err.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


async def test_database_down_answers_503_with_retry_after_and_comes_back(own_app, capsys):
    c, stack = own_app
    configure_logging(level="INFO", json=True)
    ops, user, key, login = await _tenant_and_key(c)
    assert (await c.get("/v1/me", headers=key)).status_code == 200

    postmaster = _postmaster(stack.embedded.pgdata)
    postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
    postmaster.wait(timeout=60)
    capsys.readouterr()

    calls = [
        ("GET", "/v1/me", key, None),
        ("GET", "/v1/me", user, None),
        ("GET", "/v1/documents", user, None),
        ("GET", "/v1/admin/tenants", ops, None),
        ("POST", "/v1/auth/login", {}, login),
        ("POST", "/v1/incidents", user, {"title": "t", "description": "d", "severity": "low"}),
    ]
    request_ids = []
    for method, path, headers, body in calls:
        response = await c.request(method, path, headers=headers, json=body)
        assert response.status_code == 503, (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["type"].endswith("/database-unavailable")
        assert "psycopg" not in response.text and "SQL" not in response.text
        request_ids.append(response.headers["x-request-id"])
    assert (await c.get("/health/ready")).status_code == 503
    assert (await c.get("/health/live")).status_code == 200

    logged = {
        line.get("request_id")
        for line in _log_lines(capsys.readouterr().err)
        if line.get("event") == "dependency unavailable"
    }
    assert set(request_ids) <= logged

    with stack.embedded._server._lock:  # the wheel starts it again on the same data
        stack.embedded._server.ensure_postgres_running()
    statuses = [(await c.get("/v1/me", headers=key)).status_code for _ in range(3)]
    assert statuses[-1] == 200 and 500 not in statuses
    assert (await c.get("/health/ready")).status_code == 200


async def test_a_500_carries_the_request_id_and_its_log_line_the_same(own_app, capsys):
    c, _ = own_app
    configure_logging(level="INFO", json=True)
    capsys.readouterr()
    response = await c.get("/v1/boom", headers={"X-Request-ID": "trace-0123456789"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-0123456789"
    assert response.headers["content-type"] == "application/problem+json"
    assert "a bug" not in response.text
    lines = _log_lines(capsys.readouterr().err)
    failure = [line for line in lines if line.get("event") == "unhandled error"]
    assert failure and failure[0]["request_id"] == "trace-0123456789"
    assert "RuntimeError" in failure[0].get("exception", "")
