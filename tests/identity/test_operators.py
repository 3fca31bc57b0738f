"""Operators are their own kind of subject: the admin API is theirs, tenant routes are not."""

from __future__ import annotations

from tests.conftest import PASSWORD, bearer, login


async def test_the_bootstrap_token_is_closed_once_an_operator_exists(
    client, operator_headers, bootstrap_headers
):
    """What it may do before that: tests/identity/test_bootstrap_token.py."""
    account = {"email": "late@tenantry.dev", "name": "Late", "password": PASSWORD}
    late = await client.post("/v1/admin/operators", json=account, headers=bootstrap_headers)
    assert late.status_code == 401


async def test_operator_login_and_scope(client, operator_headers, make_tenant, make_user):
    operators = await client.get("/v1/admin/operators", headers=operator_headers)
    assert operators.status_code == 200 and operators.json()["items"]
    for path in ("/v1/me", "/v1/users", "/v1/api-keys"):
        response = await client.get(path, headers=operator_headers)
        assert response.status_code == 403, path
    wrong = await client.post(
        "/v1/admin/auth/login",
        json={"email": operators.json()["items"][0]["email"], "password": "Wrong-Pass-123"},
    )
    assert wrong.status_code == 401

    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    owner_headers = bearer((await login(client, tenant, owner))["access_token"])
    for path in ("/v1/admin/tenants", "/v1/admin/operators", f"/v1/admin/tenants/{tenant.slug}"):
        assert (await client.get(path, headers=owner_headers)).status_code == 403, path
    create = await client.post(
        "/v1/admin/operators",
        json={"email": "sneaky@tenantry.dev", "name": "S", "password": PASSWORD},
        headers=owner_headers,
    )
    assert create.status_code == 403


async def test_operator_actions_on_a_tenant_are_audited(
    client, operator_headers, make_tenant, admin_sql
):
    tenant = await make_tenant()
    await client.post(
        f"/v1/admin/tenants/{tenant.slug}/users",
        json={"email": "first@example.com", "password": PASSWORD, "role": "owner"},
        headers=operator_headers,
    )
    await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", headers=operator_headers)
    rows = admin_sql.execute(
        "SELECT actor, action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant.id]
    ).fetchall()
    operator_rows = [action for actor, action in rows if actor.startswith("operator:ops-")]
    assert operator_rows == ["user.created", "tenant.suspended"]
