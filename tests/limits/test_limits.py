"""Per-tenant rate and concurrency limits (in-process backend), the RateLimit headers, operator
overrides, and quotas on users and API keys."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tenantry.cli.main import app as cli
from tests.conftest import PASSWORD, bearer, login

IANA = "https://iana.org/assignments/http-problem-types#"


@pytest.fixture
async def keyed(client, make_tenant, make_user, operator_headers):
    """A standard tenant, its admin's headers and an API key, with a small request limit."""
    tenant = await make_tenant(tier="standard")
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    key = (
        await client.post("/v1/api-keys", json={"name": "k", "scopes": ["read"]}, headers=headers)
    ).json()["key"]
    return tenant, headers, {"X-API-Key": key}


async def test_headers_on_success_then_429_with_retry_after(client, keyed, operator_headers):
    tenant, _, key = keyed
    set_limit = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"requests_per_minute": 5},
        headers=operator_headers,
    )
    assert set_limit.json()["effective"]["requests_per_minute"] == 5
    answers = [await client.get("/v1/me", headers=key) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0].headers["ratelimit-policy"] == '"default";q=5;w=60'
    assert answers[0].headers["ratelimit"].startswith('"default";r=4;t=')
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == IANA + "quota-exceeded"
    assert refused.headers["ratelimit"].startswith('"default";r=0;t=')
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_one_tenant_at_its_limit_does_not_limit_another(
    client, keyed, make_tenant, make_user, operator_headers
):
    tenant, _, key = keyed
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"requests_per_minute": 1},
        headers=operator_headers,
    )
    await client.get("/v1/me", headers=key)
    assert (await client.get("/v1/me", headers=key)).status_code == 429
    other = await make_tenant(tier="free")
    user = await make_user(other, "member")
    other_headers = bearer((await login(client, other, user))["access_token"])
    assert (await client.get("/v1/me", headers=other_headers)).status_code == 200


async def test_concurrency_limit_refuses_past_the_leases_in_flight(
    client, keyed, app, operator_headers
):
    tenant, _, key = keyed
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"concurrent_requests": 2},
        headers=operator_headers,
    )
    held = [await app.state.concurrency.acquire(str(tenant.id), 2) for _ in range(2)]
    try:
        refused = await client.get("/v1/me", headers=key)
        assert refused.status_code == 429 and "in flight" in refused.json()["detail"]
    finally:
        for lease in held:
            await app.state.concurrency.release(str(tenant.id), lease)
    assert (await client.get("/v1/me", headers=key)).status_code == 200


async def test_operators_and_health_are_never_limited(client, operator_headers):
    for _ in range(3):
        assert (await client.get("/health/live")).status_code == 200
        response = await client.get("/v1/admin/tenants", headers=operator_headers)
        assert response.status_code == 200 and "ratelimit" not in response.headers


async def test_override_returns_to_the_tier_and_is_audited(
    client, keyed, operator_headers, admin_sql
):
    tenant, _, _ = keyed
    url = f"/v1/admin/tenants/{tenant.slug}/limits"
    await client.patch(url, json={"users": 7}, headers=operator_headers)
    shown = (await client.get(url, headers=operator_headers)).json()
    assert shown["overrides"] == {"users": 7} and shown["effective"]["users"] == 7
    assert shown["tier_limits"]["users"] == 50
    back = (await client.patch(url, json={"users": None}, headers=operator_headers)).json()
    assert back["overrides"] == {} and back["effective"]["users"] == 50
    bad = await client.patch(url, json={"users": 0}, headers=operator_headers)
    assert bad.status_code == 422 and "body.users" in bad.json()["detail"]
    unknown = await client.patch(url, json={"bananas": 1}, headers=operator_headers)
    assert unknown.status_code == 422
    actions = [
        r[0]
        for r in admin_sql.execute(
            "SELECT action FROM audit_events WHERE tenant_id = %s", [tenant.id]
        ).fetchall()
    ]
    assert actions.count("tenant.limits_changed") == 2


async def test_user_and_key_quotas(client, keyed, operator_headers):
    tenant, headers, _ = keyed
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"users": 2, "api_keys": 1},
        headers=operator_headers,
    )
    second = await client.post(
        "/v1/users", json={"email": "two@example.com", "password": PASSWORD}, headers=headers
    )
    assert second.status_code == 201
    third = await client.post(
        "/v1/users", json={"email": "three@example.com", "password": PASSWORD}, headers=headers
    )
    assert third.status_code == 403
    problem = third.json()
    assert problem["type"].endswith("/quota-exhausted") and "'users'" in problem["detail"]
    assert problem["errors"] == [{"quota": "users", "limit": 2, "used": 2, "requested": 1}]

    extra_key = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["read"]}, headers=headers
    )
    assert extra_key.status_code == 403 and "'api_keys'" in extra_key.json()["detail"]


def test_cli_sets_and_shows_limits(stack, make_tenant_sync):
    runner = CliRunner()
    slug = make_tenant_sync("free")
    result = runner.invoke(cli, ["limits", "set", slug, "requests_per_minute=600", "documents=42"])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(cli, ["limits", "show", slug]).stdout)
    assert (
        shown["effective"]["requests_per_minute"] == 600 and shown["effective"]["documents"] == 42
    )
    assert shown["tier_limits"]["requests_per_minute"] == 120
    cleared = json.loads(runner.invoke(cli, ["limits", "set", slug, "documents=null"]).stdout)
    assert cleared["overrides"] == {"requests_per_minute": 600}
    bad = runner.invoke(cli, ["limits", "set", slug, "requests_per_minute=-3"])
    assert bad.exit_code == 2 and "requests_per_minute" in bad.stderr


async def test_a_tenant_past_its_rate_is_refused_before_authentication(
    client, keyed, operator_headers, admin_sql
):
    tenant, _, key = keyed
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"requests_per_minute": 5},
        headers=operator_headers,
    )
    forged = {
        "X-API-Key": key["X-API-Key"][:-6] + "forged"
    }  # names the tenant, holds no valid secret
    assert [(await client.get("/v1/me", headers=key)).status_code for _ in range(3)] == [200] * 3
    # Forged credentials are refused as unknown, and do not spend the tenant's quota.
    assert {(await client.get("/v1/me", headers=forged)).status_code for _ in range(10)} == {401}
    assert [(await client.get("/v1/me", headers=key)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    # Once the tenant is past its rate, even a forged credential is answered 429 without a
    # database lookup: the refusal happens before authentication.
    early = await client.get("/v1/me", headers=forged)
    assert early.status_code == 429 and early.headers["ratelimit"].startswith('"default";r=0;')
