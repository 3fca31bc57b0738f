"""Per-tenant SLOs: each tenant's requests counted per hour in PostgreSQL, reported over rolling
windows against its tier's objectives, to the tenant itself and to operators."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

import psycopg

from tenantry.db.base import utcnow
from tenantry.db.urls import libpq_dsn
from tenantry.observability.metrics import LATENCY_BUCKETS
from tenantry.observability.slo import SLO_METER, p95, window_of
from tests.conftest import bearer, login


def _buckets(**by_bound: int) -> list[int]:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for bound, count in by_bound.items():
        counts[LATENCY_BUCKETS.index(float(bound.removeprefix("le_").replace("_", ".")))] = count
    return counts


def test_p95_is_interpolated_within_its_bucket_as_prometheus_does():
    # 90 answers within 0.1 s, 10 between 0.3 and 0.5 s: the 95th is halfway through the latter.
    assert p95(_buckets(le_0_1=90, le_0_5=10)) == 0.4
    assert p95([0] * (len(LATENCY_BUCKETS) + 1)) is None
    beyond = [0] * len(LATENCY_BUCKETS) + [5]
    assert p95(beyond) == LATENCY_BUCKETS[-1]


def test_a_window_compares_with_the_tiers_objectives():
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    rows = [(now, "requests", 1000), (now, "errors", 10)]
    rows += [
        (now, f"le:{LATENCY_BUCKETS.index(0.5)}", 900),
        (now, f"le:{LATENCY_BUCKETS.index(1)}", 90),
    ]
    standard = window_of("1h", rows, now, "standard")  # 99.5 % available, 95 % within 0.5 s
    assert standard.availability == 0.99 and standard.meets_availability is False
    assert standard.within_latency == 900 / 990 and standard.meets_latency is False
    assert round(standard.error_budget_left, 6) == -1.0  # twice the budget spent
    free = window_of("1h", rows, now, "free")  # 99 % available, 95 % within 1 s
    assert free.meets_availability is True and free.meets_latency is True
    empty = window_of("1h", rows, now.replace(year=now.year + 1), "free")
    assert empty.requests == 0 and empty.availability is None and empty.meets_latency is None


async def test_a_tenant_sees_its_own_slo_and_an_operator_sees_any(
    client, make_tenant, make_user, operator_headers
):
    a, b = await make_tenant(tier="standard"), await make_tenant(tier="enterprise")
    a_headers = bearer((await login(client, a, await make_user(a, "admin")))["access_token"])
    b_headers = bearer((await login(client, b, await make_user(b, "admin")))["access_token"])
    for _ in range(5):
        assert (await client.get("/v1/me", headers=a_headers)).status_code == 200
    SLO_METER.record(a.id, status=503, seconds=0.01)  # one 5xx, as the request path counts it

    own = (await client.get("/v1/slo", headers=a_headers)).json()
    assert own["tenant"] == a.slug and own["tier"] == "standard"
    assert own["objective"] == {"availability": 0.995, "latency": 0.95, "latency_seconds": 0.5}
    assert [w["window"] for w in own["windows"]] == ["1h", "1d", "7d", "30d"]
    hour = own["windows"][0]
    assert hour["requests"] >= 6 and hour["errors"] == 1
    assert hour["availability"] == 1 - 1 / hour["requests"]
    assert hour["meets_availability"] is False  # one in under 200 is over the 0.5 % budget
    assert hour["p95_seconds"] is not None

    seen = await client.get(f"/v1/admin/tenants/{a.slug}/slo", headers=operator_headers)
    assert seen.status_code == 200
    assert seen.json()["windows"][0]["errors"] == 1
    assert seen.json()["windows"][0]["requests"] >= hour["requests"]

    other = (await client.get("/v1/slo", headers=b_headers)).json()
    assert other["tenant"] == b.slug and other["windows"][0]["errors"] == 0
    assert other["objective"]["availability"] == 0.999

    missing = await client.get("/v1/admin/tenants/no-such-tenant/slo", headers=operator_headers)
    assert missing.status_code == 404
    assert (
        await client.get(f"/v1/admin/tenants/{a.slug}/slo", headers=a_headers)
    ).status_code == 403


async def test_a_report_waits_for_a_flush_still_writing_its_tenants_counts(db, stack, make_tenant):
    """The background flush takes every count out of memory, then writes: a report asked
    meanwhile must not read the table before those counts are in it."""
    from tenantry.observability.slo import SloMeter, report

    tenant = await make_tenant()
    meter = SloMeter()
    for _ in range(3):
        meter.record(tenant.id, status=200, seconds=0.01)
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    # Another transaction holds the row the flush will write: the flush waits on it.
    with psycopg.connect(libpq_dsn(stack.admin_url)) as holder:
        holder.execute(
            "INSERT INTO slo_hourly (tenant_id, hour, name, value) VALUES (%s, %s, 'requests', 0)",
            [tenant.id, hour],
        )
        flushing = asyncio.create_task(meter.flush(db))
        await asyncio.sleep(0)  # let it take its counts
        with patch("tenantry.observability.slo.SLO_METER", meter):
            asked = asyncio.create_task(
                report(db, tenant_id=tenant.id, slug=tenant.slug, tier=tenant.tier)
            )
            done, _ = await asyncio.wait({asked}, timeout=0.5)
            assert not done, "the report read while a flush was still writing"
            holder.rollback()
            await flushing
            shown = await asked
    assert max(window.requests for window in shown.windows) == 3
