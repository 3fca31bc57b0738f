"""An API key never does more than the user who made it may do now: demoted, the key is capped;
disabled or removed, the key does nothing; lists show the creator and the last use."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import bearer, login

NEW_USER = {"email": "made-by-key@example.com", "password": "Correct-Horse-42-Battery"}


@pytest.fixture
async def team(client, make_tenant, make_user):
    """A tenant with an owner (who manages the admin) and an admin who makes the keys."""
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    admin = await make_user(tenant, "admin")
    owner_headers = bearer((await login(client, tenant, owner))["access_token"])
    admin_headers = bearer((await login(client, tenant, admin))["access_token"])
    return tenant, admin, owner_headers, admin_headers


async def make_key(client, headers, scopes=("admin",)) -> dict:
    created = await client.post(
        "/v1/api-keys", json={"name": "ci", "scopes": list(scopes)}, headers=headers
    )
    assert created.status_code == 201, created.text
    return created.json()


async def set_admin(client, owner_headers, admin, **change) -> None:
    changed = await client.patch(f"/v1/users/{admin.id}", json=change, headers=owner_headers)
    assert changed.status_code == 200, changed.text


async def test_a_demoted_creator_caps_the_key_at_once(client, team):
    _, admin, owner_headers, admin_headers = team
    key = {"X-API-Key": (await make_key(client, admin_headers))["key"]}
    assert (await client.get("/v1/api-keys", headers=key)).status_code == 200
    user = {**NEW_USER, "role": "member"}
    assert (await client.post("/v1/users", json=user, headers=key)).status_code == 201

    await set_admin(client, owner_headers, admin, role="viewer")
    me = (await client.get("/v1/me", headers=key)).json()
    # `admin` scope ∩ a viewer's role: what a viewer may read, nothing of an admin's.
    assert set(me["permissions"]) == {"me", "content:read", "config:read", "incidents:read"}
    for method, path in (("GET", "/v1/api-keys"), ("GET", "/v1/users"), ("GET", "/v1/usage")):
        refused = await client.request(method, path, headers=key)
        assert refused.status_code == 403, (path, refused.text)
    second = {**NEW_USER, "email": "second@example.com"}
    assert (await client.post("/v1/users", json=second, headers=key)).status_code == 403
    assert (await client.get("/v1/config", headers=key)).status_code == 200

    await set_admin(client, owner_headers, admin, role="admin")  # promoted back: the key follows
    assert (await client.get("/v1/api-keys", headers=key)).status_code == 200


async def test_a_key_never_grants_more_than_its_scope(client, team):
    _, _, _, admin_headers = team
    key = {"X-API-Key": (await make_key(client, admin_headers, scopes=["read"]))["key"]}
    me = (await client.get("/v1/me", headers=key)).json()
    assert "users:manage" not in me["permissions"] and "users:read" in me["permissions"]
    assert (await client.get("/v1/api-keys", headers=key)).status_code == 403


async def test_a_disabled_creator_disables_the_key_until_enabled_again(client, team):
    _, admin, owner_headers, admin_headers = team
    key = {"X-API-Key": (await make_key(client, admin_headers))["key"]}
    await set_admin(client, owner_headers, admin, status="disabled")
    for path in ("/v1/me", "/v1/users"):
        refused = await client.get(path, headers=key)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == (
            'Bearer error="invalid_token", '
            'error_description="The API key is disabled with its creator"'
        )
    listed = (await client.get("/v1/api-keys", headers=owner_headers)).json()["items"]
    assert [k["state"] for k in listed] == ["creator_disabled"]

    await set_admin(client, owner_headers, admin, status="active")
    assert (await client.get("/v1/me", headers=key)).status_code == 200


async def test_a_removed_creators_key_never_works_again(client, team, make_user, admin_sql):
    tenant, admin, owner_headers, admin_headers = team
    created = await make_key(client, admin_headers)
    key = {"X-API-Key": created["key"]}
    assert (await client.get("/v1/users", headers=key)).status_code == 200
    removed = await client.delete(f"/v1/users/{admin.id}", headers=owner_headers)
    assert removed.status_code == 204
    for path in ("/v1/me", "/v1/users"):
        assert (await client.get(path, headers=key)).status_code == 401, path

    # Someone new with the same address is another person: the key stays dead.
    await make_user(tenant, "admin", email=admin.email)
    assert (await client.get("/v1/me", headers=key)).status_code == 401
    shown = (await client.get(f"/v1/api-keys/{created['id']}", headers=owner_headers)).json()
    assert (shown["state"], shown["creator"], shown["created_by"]) == (
        "creator_removed",
        None,
        f"user:{admin.email}",
    )
    creator = admin_sql.execute(
        "SELECT created_by_user_id FROM api_keys WHERE id = %s", [created["id"]]
    ).fetchone()[0]
    assert creator is None


async def test_a_key_made_by_a_key_answers_to_the_same_person(client, team):
    _, admin, owner_headers, admin_headers = team
    parent = {"X-API-Key": (await make_key(client, admin_headers))["key"]}
    child = await make_key(client, parent)
    assert child["creator"]["id"] == str(admin.id)
    await set_admin(client, owner_headers, admin, status="disabled")
    assert (await client.get("/v1/me", headers={"X-API-Key": child["key"]})).status_code == 401


async def test_lists_show_the_creator_and_the_last_use(client, team):
    _, admin, owner_headers, admin_headers = team
    created = await make_key(client, admin_headers, scopes=["read"])
    assert created["last_used_at"] is None and created["state"] == "active"
    assert created["creator"] == {
        "id": str(admin.id),
        "email": admin.email,
        "role": "admin",
        "status": "active",
    }
    assert (await client.get("/v1/me", headers={"X-API-Key": created["key"]})).status_code == 200
    listed = (await client.get("/v1/api-keys", headers=owner_headers)).json()["items"]
    (item,) = listed
    assert item["creator"]["email"] == admin.email and item["last_used_at"] is not None


async def test_demotions_and_requests_at_once_never_let_the_key_past_the_new_role(client, team):
    """Requests with the key in flight while the creator is demoted: once the demotion has
    answered, no request that starts afterwards gets past the viewer's permissions."""
    _, admin, owner_headers, admin_headers = team
    key = {"X-API-Key": (await make_key(client, admin_headers))["key"]}
    calls = [client.get("/v1/api-keys", headers=key) for _ in range(8)]
    demoted = client.patch(f"/v1/users/{admin.id}", json={"role": "viewer"}, headers=owner_headers)
    answers = await asyncio.gather(demoted, *calls)
    assert answers[0].status_code == 200
    assert {a.status_code for a in answers[1:]} <= {200, 403}
    after = await asyncio.gather(*(client.get("/v1/api-keys", headers=key) for _ in range(8)))
    assert {a.status_code for a in after} == {403}
