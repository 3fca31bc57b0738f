"""Load shedding by tier, and each tier's share of the database connections."""

from __future__ import annotations

import asyncio
import time

import pytest

from tenantry.limits.connections import ConnectionShares
from tenantry.limits.shedding import LoadMonitor
from tenantry.tenancy.context import TenantRef, tenant_context
from tenantry.tenants.service import ref
from tests.conftest import bearer, login


@pytest.fixture
async def callers(client, make_tenant, make_user):
    out = {}
    for tier in ("free", "standard", "enterprise"):
        tenant = await make_tenant(tier=tier)
        user = await make_user(tenant, "member")
        out[tier] = bearer((await login(client, tenant, user))["access_token"])
    return out


async def statuses(client, callers, operator_headers):
    got = {tier: (await client.get("/v1/me", headers=h)).status_code for tier, h in callers.items()}
    got["health"] = (await client.get("/health/live")).status_code
    got["operator"] = (await client.get("/v1/admin/tiers", headers=operator_headers)).status_code
    got["anonymous"] = (await client.get("/v1/me")).status_code
    return got


async def test_the_lowest_tier_is_shed_first(app, client, callers, operator_headers):
    monitor = app.state.load
    baseline = monitor.in_flight
    try:
        monitor.in_flight = baseline + int(monitor.capacity * 0.75)
        at_75 = await statuses(client, callers, operator_headers)
        monitor.in_flight = baseline + int(monitor.capacity * 0.9)
        at_90 = await statuses(client, callers, operator_headers)
        monitor.in_flight = baseline + monitor.capacity
        full = await statuses(client, callers, operator_headers)
    finally:
        monitor.in_flight = baseline
    assert at_75 == {
        "free": 503,
        "standard": 200,
        "enterprise": 200,
        "health": 200,
        "operator": 200,
        "anonymous": 503,
    }
    assert at_90 == {
        "free": 503,
        "standard": 503,
        "enterprise": 200,
        "health": 200,
        "operator": 200,
        "anonymous": 503,
    }
    assert full == {
        "free": 503,
        "standard": 503,
        "enterprise": 503,
        "health": 200,
        "operator": 200,
        "anonymous": 503,
    }
    assert (await statuses(client, callers, operator_headers))["free"] == 200


async def test_a_shed_answer_is_a_problem_with_retry_after(app, client, callers):
    monitor = app.state.load
    baseline = monitor.in_flight
    monitor.in_flight = baseline + monitor.capacity
    try:
        response = await client.get("/v1/me", headers=callers["free"])
    finally:
        monitor.in_flight = baseline
    assert response.status_code == 503 and response.headers["retry-after"]
    assert (
        response.json()["type"]
        == "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
    )


def hog_the_loop(seconds: float) -> None:
    """CPU-bound work on the event loop's thread, as a careless handler would do."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_late_event_loop_counts_as_pressure():
    monitor = LoadMonitor(capacity=100, lag_threshold_seconds=0.05)
    watcher = asyncio.create_task(monitor.watch_loop_lag(interval=0.01))
    try:
        for _ in range(20):
            await asyncio.sleep(0.01)
            hog_the_loop(0.06)
        assert monitor.should_shed(0.7)
    finally:
        watcher.cancel()


def test_one_stall_does_not_shed_but_lag_that_persists_does():
    # A replica frozen for 10 s (SIGSTOP) reads 10 s late on its next tick: it must serve the
    # requests that waited for it, not refuse them all (bench/failover.py's frozen phase).
    monitor = LoadMonitor(capacity=100, lag_threshold_seconds=0.25)
    monitor.observe(10.0)
    assert not monitor.should_shed(0.7)
    for _ in range(10):
        monitor.observe(0.3)
    assert monitor.should_shed(1.0)


async def test_each_tier_holds_at_most_its_share_of_connections(db, make_tenant):
    shares = ConnectionShares(pool_capacity=10)
    assert [shares.size_for(t) for t in ("free", "standard", "enterprise")] == [2, 4, 6]
    tenant = await make_tenant(tier="free")
    capped = type(db)(db.engine, tenant_slots=shares)
    inside, release = 0, asyncio.Event()
    started = [asyncio.Event() for _ in range(3)]

    async def hold(i: int) -> None:
        nonlocal inside
        with tenant_context(ref(tenant)):
            async with capped.tenant() as session:
                inside += 1
                started[i].set()
                await release.wait()
                await session.flush()
        inside -= 1

    tasks = [asyncio.create_task(hold(i)) for i in range(3)]
    await started[0].wait()
    await started[1].wait()
    for _ in range(20):
        await asyncio.sleep(0)  # give the third every chance to get in
    assert inside == 2 and not started[2].is_set()
    release.set()
    await asyncio.gather(*tasks)
    assert started[2].is_set() and inside == 0
    assert shares(TenantRef(tenant.id, tenant.slug, "free").id) is None  # no context: no cap
