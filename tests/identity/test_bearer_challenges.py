"""401s follow RFC 6750: a client tells "refresh" (an expired access token) from "log in again"
(any other refused credential) from "send one" (none sent) by the `WWW-Authenticate` header."""

from __future__ import annotations

import uuid

import pytest

from tenantry.identity import access_tokens
from tests.conftest import bearer, login

INVALID = 'Bearer error="invalid_token", error_description="The credential is not valid"'
EXPIRED = 'Bearer error="invalid_token", error_description="The access token expired"'


def challenge(response) -> str:
    assert response.status_code == 401, response.text
    return response.headers["www-authenticate"]


@pytest.fixture
async def member(client, make_tenant, make_user):
    tenant = await make_tenant()
    user = await make_user(tenant, "member")
    return tenant, user, await login(client, tenant, user)


async def test_no_credential_gets_a_challenge_without_an_error(client):
    assert challenge(await client.get("/v1/me")) == "Bearer"
    assert challenge(await client.get("/v1/admin/tenants")) == "Bearer"


async def test_an_expired_access_token_says_so(client, app, member):
    tenant, user, tokens = member
    expired = access_tokens.issue(
        app.state.signing_key,
        kind="user",
        subject_id=user.id,
        tenant_id=tenant.id,
        role="member",
        session_id=uuid.uuid4(),
        minutes=-1,
    )
    answer = await client.get("/v1/me", headers=bearer(expired))
    assert challenge(answer) == EXPIRED
    assert answer.json()["detail"] == "The access token expired."
    # ...and the refresh token gets a new one.
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    fresh = refreshed.json()["access_token"]
    assert (await client.get("/v1/me", headers=bearer(fresh))).status_code == 200


async def test_an_expired_token_signed_by_someone_else_is_just_invalid(client, member):
    tenant, user, _ = member
    forged = access_tokens.issue(
        "not-the-platform-key-" + "x" * 32,
        kind="user",
        subject_id=user.id,
        tenant_id=tenant.id,
        session_id=uuid.uuid4(),
        minutes=-1,
    )
    assert challenge(await client.get("/v1/me", headers=bearer(forged))) == INVALID


async def test_garbage_revoked_sessions_and_unknown_keys_are_invalid_tokens(client, member):
    tenant, _, tokens = member
    assert challenge(await client.get("/v1/me", headers=bearer("garbage"))) == INVALID
    assert challenge(await client.get("/v1/me", headers=bearer("eyJ.e30.x"))) == INVALID
    unknown_key = f"tnry_{tenant.id.hex}_abcdefgh_{'s' * 40}"
    assert challenge(await client.get("/v1/me", headers={"X-API-Key": unknown_key})) == INVALID
    access = bearer(tokens["access_token"])
    assert (await client.post("/v1/auth/logout", headers=access)).status_code == 204
    assert challenge(await client.get("/v1/me", headers=access)) == INVALID


async def test_revoked_and_expired_keys_say_which(client, make_tenant, make_user, admin_sql):
    tenant = await make_tenant()
    admin = bearer((await login(client, tenant, await make_user(tenant, "admin")))["access_token"])
    made = [
        (await client.post("/v1/api-keys", json={"name": n, "scopes": ["read"]}, headers=admin))
        for n in ("revoked", "expired")
    ]
    revoked, expired = (m.json() for m in made)
    await client.delete(f"/v1/api-keys/{revoked['id']}", headers=admin)
    admin_sql.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
        [expired["id"]],
    )
    answer = await client.get("/v1/me", headers={"X-API-Key": revoked["key"]})
    assert challenge(answer).endswith('error_description="The API key was revoked"')
    answer = await client.get("/v1/me", headers={"X-API-Key": expired["key"]})
    assert challenge(answer).endswith('error_description="The API key expired"')
