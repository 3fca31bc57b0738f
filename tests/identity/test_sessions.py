"""Login, refresh rotation with theft detection, logout, throttling, and who may log in."""

from __future__ import annotations

import jwt
import pytest

from tests.conftest import PASSWORD, bearer, login


@pytest.fixture
async def member(make_tenant, make_user):
    tenant = await make_tenant()
    return tenant, await make_user(tenant, "member")


async def audit_actions(admin_sql, tenant) -> list[str]:
    rows = admin_sql.execute(
        "SELECT action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant.id]
    ).fetchall()
    return [r[0] for r in rows]


async def test_login_returns_oauth_style_tokens(client, member, app, admin_sql):
    tenant, user = member
    tokens = await login(client, tenant, user)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["refresh_token"].startswith("tnrt_")
    claims = jwt.decode(
        tokens["access_token"], app.state.signing_key, algorithms=["HS256"], issuer="tenantry"
    )
    assert claims["sub"] == str(user.id) and claims["tenant"] == str(tenant.id)
    assert claims["role"] == "member" and claims["jti"] and claims["exp"] - claims["iat"] == 3600
    me = (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert (me["tenant"], me["role"], me["kind"]) == (tenant.slug, "member", "user")
    assert "login.succeeded" in await audit_actions(admin_sql, tenant)
    stored = admin_sql.execute(
        "SELECT token_hash FROM refresh_tokens WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert tokens["refresh_token"] not in stored and len(stored) == 64


async def test_unknown_user_wrong_password_and_unknown_tenant_look_the_same(
    client, member, admin_sql
):
    tenant, user = member
    answers = [
        await client.post("/v1/auth/login", json=body)
        for body in (
            {"tenant": tenant.slug, "email": user.email, "password": "Wrong-Password-99"},
            {"tenant": tenant.slug, "email": "nobody@example.com", "password": PASSWORD},
            {"tenant": "no-such-tenant", "email": user.email, "password": PASSWORD},
        )
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({(a.json()["detail"], a.json()["type"]) for a in answers}) == 1
    assert (await audit_actions(admin_sql, tenant)).count("login.failed") == 2


async def test_failed_logins_are_throttled_per_account(client, member):
    tenant, user = member
    bad = {"tenant": tenant.slug, "email": user.email, "password": "Wrong-Password-99"}
    statuses = [(await client.post("/v1/auth/login", json=bad)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    refused = await client.post("/v1/auth/login", json={**bad, "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("/too-many-login-attempts")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_failed_logins_are_throttled_per_address(app, make_tenant, make_user):
    from httpx import ASGITransport, AsyncClient

    tenant = await make_tenant()
    victim = await make_user(tenant)
    transport = ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        # As many failures as the address may have, each on another account: one per account
        # stays far below the accounts' own limit, so only the address can refuse.
        for i in range(app.state.login_throttle.per_address):
            await client.post(
                "/v1/auth/login",
                json={
                    "tenant": tenant.slug,
                    "email": f"guess{i}@example.com",
                    "password": "Nope-Nope-123",
                },
            )
        refused = await client.post(
            "/v1/auth/login",
            json={"tenant": tenant.slug, "email": victim.email, "password": PASSWORD},
        )
    assert refused.status_code == 429


async def test_refresh_rotates_and_reuse_revokes_the_family(client, member, admin_sql):
    tenant, user = member
    first = await login(client, tenant, user)
    second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 200
    third = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    third = third.json()

    # The first token again, after its successor was used (within the grace period or not).
    stolen = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    # The whole family is gone: the latest refresh token and its access token too.
    assert (
        await client.post("/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    ).status_code == 401
    assert (await client.get("/v1/me", headers=bearer(third["access_token"]))).status_code == 401
    assert "auth.refresh_reused" in await audit_actions(admin_sql, tenant)
    # Another session of the same user is untouched.
    other = await login(client, tenant, user)
    assert (await client.get("/v1/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_a_retried_refresh_within_the_grace_period_gets_a_working_pair(client, member):
    tenant, user = member
    first = await login(client, tenant, user)
    body = {"refresh_token": first["refresh_token"]}
    second = (await client.post("/v1/auth/refresh", json=body)).json()
    retried = await client.post("/v1/auth/refresh", json=body)  # the answer was lost, say
    assert retried.status_code == 200
    retried = retried.json()
    assert retried["refresh_token"] != second["refresh_token"]
    for pair in (second, retried):
        assert (await client.get("/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
    onward = await client.post("/v1/auth/refresh", json={"refresh_token": retried["refresh_token"]})
    assert onward.status_code == 200


async def test_a_replay_after_the_grace_period_revokes_the_session(
    client, member, admin_sql, settings
):
    from datetime import timedelta

    tenant, user = member
    first = await login(client, tenant, user)
    second = (
        await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    # The first token was spent longer ago than the grace period allows.
    admin_sql.execute(
        "UPDATE refresh_tokens SET used_at = used_at - %s WHERE user_id = %s AND used_at IS NOT NULL",
        [timedelta(seconds=settings.refresh_grace_seconds + 1), user.id],
    )
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert (await client.get("/v1/me", headers=bearer(second["access_token"]))).status_code == 401
    assert "auth.refresh_reused" in await audit_actions(admin_sql, tenant)


async def test_logout_revokes_the_session(client, member):
    tenant, user = member
    tokens = await login(client, tenant, user)
    assert (
        await client.post("/v1/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204
    assert (await client.get("/v1/me", headers=bearer(tokens["access_token"]))).status_code == 401
    again = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


async def test_garbage_tokens_are_401(client):
    for token in ("tnrt_nonsense", "tnrt_" + "0" * 32 + "_abcdefgh_xyz", ""):
        response = await client.post("/v1/auth/refresh", json={"refresh_token": token or "x"})
        assert response.status_code == 401
    forged = jwt.encode(
        {"sub": "x", "kind": "user"},
        "not-our-key-but-long-enough-for-hs256-0123",
        algorithm="HS256",
    )
    assert (await client.get("/v1/me", headers=bearer(forged))).status_code == 401


async def test_disabled_user_and_suspended_tenant_are_403(
    client, member, make_user, operator_headers
):
    tenant, user = member
    tokens = await login(client, tenant, user)
    owner = await make_user(tenant, "owner")
    owner_tokens = await login(client, tenant, owner)

    disabled = await client.patch(
        f"/v1/users/{user.id}",
        json={"status": "disabled"},
        headers=bearer(owner_tokens["access_token"]),
    )
    assert disabled.status_code == 200
    refused = await client.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert refused.status_code == 403 and refused.json()["type"].endswith("/user-disabled")
    login_refused = await client.post(
        "/v1/auth/login", json={"tenant": tenant.slug, "email": user.email, "password": PASSWORD}
    )
    assert login_refused.status_code == 403

    await client.post(f"/v1/admin/tenants/{tenant.slug}/suspend", headers=operator_headers)
    for path in ("/v1/me", "/v1/users", "/v1/api-keys"):
        response = await client.get(path, headers=bearer(owner_tokens["access_token"]))
        assert response.status_code == 403, path
        assert response.json()["type"].endswith("/tenant-suspended")
    await client.post(f"/v1/admin/tenants/{tenant.slug}/resume", headers=operator_headers)
    assert (
        await client.get("/v1/me", headers=bearer(owner_tokens["access_token"]))
    ).status_code == 200
