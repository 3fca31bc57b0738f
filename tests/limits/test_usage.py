"""Usage metering: per-tenant daily counters, the tenant's report and the operators' export."""

from __future__ import annotations

import csv
import io

from tests.conftest import all_items, bearer, login


async def test_requests_are_counted_per_tenant_and_exported(
    client, make_tenant, make_user, operator_headers
):
    busy, quiet = await make_tenant(), await make_tenant()
    busy_admin = bearer((await login(client, busy, await make_user(busy, "admin")))["access_token"])
    quiet_admin = bearer(
        (await login(client, quiet, await make_user(quiet, "admin")))["access_token"]
    )
    for _ in range(7):
        assert (await client.get("/v1/me", headers=busy_admin)).status_code == 200

    report = (await client.get("/v1/usage", headers=busy_admin)).json()
    today = report["days"][-1]
    assert today["metrics"]["requests"] == 8  # seven, and this report itself
    assert report["current"] == {"users": 1, "api_keys": 0, "documents": 0, "stored_bytes": 0}
    assert report["limits"]["requests_per_minute"] == 600

    quiet_report = (await client.get("/v1/usage", headers=quiet_admin)).json()
    assert quiet_report["days"][-1]["metrics"]["requests"] == 1

    exported = await client.get(
        "/v1/admin/usage", params={"format": "csv"}, headers=operator_headers
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    busy_rows = [r for r in rows if r["tenant"] == busy.slug and r["metric"] == "requests"]
    assert busy_rows and int(busy_rows[-1]["value"]) >= 8
    as_json = await all_items(client, "/v1/admin/usage", operator_headers, limit=7)
    assert any(r["tenant"] == quiet.slug and r["metric"] == "requests" for r in as_json)
    keys = [(r["tenant"], r["day"], r["metric"]) for r in as_json]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {(r["tenant"], r["day"], r["metric"], str(r["value"])) for r in as_json} >= {
        (r["tenant"], r["day"], r["metric"], r["value"]) for r in rows if r["tenant"] == quiet.slug
    }


async def test_usage_is_for_admins_and_checks_its_period(client, make_tenant, make_user):
    tenant = await make_tenant()
    member = bearer(
        (await login(client, tenant, await make_user(tenant, "member")))["access_token"]
    )
    assert (await client.get("/v1/usage", headers=member)).status_code == 403
    admin = bearer((await login(client, tenant, await make_user(tenant, "admin")))["access_token"])
    bad = await client.get(
        "/v1/usage", params={"from": "2026-12-01", "to": "2026-11-01"}, headers=admin
    )
    assert bad.status_code == 422
