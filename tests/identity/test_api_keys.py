"""API keys: shown once, hashed, scoped, accepted as Bearer or X-API-Key, expiring and revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import bearer, login


@pytest.fixture
async def admin(client, make_tenant, make_user):
    tenant = await make_tenant()
    user = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, user))["access_token"])


async def make_key(client, headers, scopes, **extra):
    response = await client.post(
        "/v1/api-keys", json={"name": "ci", "scopes": scopes, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_key_is_shown_once_and_stored_as_a_digest(client, admin, admin_sql):
    _, headers = admin
    created = await make_key(client, headers, ["read"])
    assert created["key"].startswith("tnry_") and created["prefix"].endswith("…")
    listed = (await client.get("/v1/api-keys", headers=headers)).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    shown = (await client.get(f"/v1/api-keys/{created['id']}", headers=headers)).json()
    assert "key" not in shown
    stored = admin_sql.execute(
        "SELECT key_hash FROM api_keys WHERE id = %s", [created["id"]]
    ).fetchone()[0]
    assert created["key"] not in stored and len(stored) == 64


async def test_key_works_as_bearer_and_x_api_key_within_its_scopes(client, admin, admin_sql):
    tenant, headers = admin
    key = (await make_key(client, headers, ["read"]))["key"]
    me = await client.get("/v1/me", headers={"X-API-Key": key})
    assert (
        me.status_code == 200 and me.json()["kind"] == "api_key" and me.json()["scopes"] == ["read"]
    )
    assert (await client.get("/v1/users", headers=bearer(key))).status_code == 200
    assert (await client.get("/v1/api-keys", headers=bearer(key))).status_code == 403
    assert (await client.post("/v1/users", json={}, headers=bearer(key))).status_code == 403
    used = admin_sql.execute(
        "SELECT last_used_at FROM api_keys WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert used is not None


async def test_revoked_expired_and_tampered_keys_are_refused(client, admin, admin_sql):
    tenant, headers = admin
    created = await make_key(client, headers, ["read"])
    assert (await client.delete(f"/v1/api-keys/{created['id']}", headers=headers)).json()[
        "revoked_at"
    ]
    assert (await client.get("/v1/me", headers=bearer(created["key"]))).status_code == 401

    soon = await make_key(
        client, headers, ["read"], expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    assert (await client.get("/v1/me", headers=bearer(soon["key"]))).status_code == 200
    admin_sql.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", [soon["id"]]
    )
    assert (await client.get("/v1/me", headers=bearer(soon["key"]))).status_code == 401

    live = (await make_key(client, headers, ["read"]))["key"]
    tampered = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    assert (await client.get("/v1/me", headers=bearer(tampered))).status_code == 401
    past = await client.post(
        "/v1/api-keys",
        json={"name": "old", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"},
        headers=headers,
    )
    assert past.status_code == 422
    unknown_scope = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["root"]}, headers=headers
    )
    assert unknown_scope.status_code == 422 and "body.scopes.0" in unknown_scope.json()["detail"]

    actions = [
        r[0]
        for r in admin_sql.execute(
            "SELECT action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant.id]
        ).fetchall()
    ]
    assert actions.count("api_key.created") == 3 and actions.count("api_key.revoked") == 1


async def test_a_key_naming_another_tenant_in_its_prefix_is_refused(client, admin, make_tenant):
    tenant, headers = admin
    other = await make_tenant()
    key = (await make_key(client, headers, ["admin"]))["key"]
    forged = key.replace(tenant.id.hex, other.id.hex)
    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401
