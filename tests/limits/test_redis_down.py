"""Redis stopped under requests: rate limits fail open with a metric and a log line, concurrency
limits and login throttling count in the process's memory, and nothing answers 500."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from tenantry.app import create_app
from tenantry.observability.logging import configure_logging
from tenantry.observability.metrics import REGISTRY
from tests.conftest import bearer, login
from tests.servers import start_redis

pytestmark = pytest.mark.slow


def degraded(limit: str) -> float:
    return REGISTRY.get_sample_value("tenantry_limits_degraded_total", {"limit": limit}) or 0.0


@pytest.fixture
async def redis_app(stack, settings):
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-redis-"))
    redis, url = start_redis(workdir)
    app = create_app(settings.model_copy(update={"redis_url": url}), database_url=stack.app_url)
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c,
        ):
            yield c, redis
    finally:
        if redis.poll() is None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_redis_down_never_answers_500(
    redis_app, make_tenant, make_user, operator_headers, capsys
):
    c, redis = redis_app
    tenant = await make_tenant(tier="standard")
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(c, tenant, admin))["access_token"])
    shared = await c.get("/v1/me", headers=headers)
    assert shared.status_code == 200 and "RateLimit" in shared.headers

    redis.terminate()
    redis.wait(timeout=10)
    configure_logging(level="INFO", json=True)
    capsys.readouterr()
    rate_before, concurrency_before = degraded("rate"), degraded("concurrency")

    answers = [await c.get("/v1/me", headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all("RateLimit" not in a.headers for a in answers[1:])  # nothing true to say
    assert degraded("rate") > rate_before and degraded("concurrency") > concurrency_before
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    warned = [e for e in events if e.get("event", "").startswith("redis unavailable")]
    assert len(warned) == 1 and "fail open" in warned[0]["event"]  # one line per outage

    # Concurrency still holds, counted in this process.
    limited = await c.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"concurrent_requests": 1},
        headers=operator_headers,
    )
    assert limited.status_code == 200, limited.text
    burst = await asyncio.gather(*(c.get("/v1/documents", headers=headers) for _ in range(8)))
    statuses = [r.status_code for r in burst]
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses

    # Failed logins are still throttled (in memory), not waved through.
    wrong = {"tenant": tenant.slug, "email": admin.email, "password": "Not-The-Password-1"}
    attempts = [(await c.post("/v1/auth/login", json=wrong)).status_code for _ in range(7)]
    assert set(attempts) <= {401, 429} and attempts[-1] == 429
