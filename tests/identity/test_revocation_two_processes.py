"""Two API processes: every change to a credential made through one takes effect on the very next
request to the other. Authentication reads the credential fresh on each request; a per-process
cache of it would fail here, because nothing tells the other process in time."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from tests.conftest import PASSWORD, bearer, login
from tests.servers import start_api

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_apis():
    apis: list[tuple[subprocess.Popen, str]] = []
    try:
        apis = [start_api(dict(os.environ)) for _ in range(2)]
        yield [url for _, url in apis]
    finally:
        for proc, _ in apis:
            proc.terminate()
            proc.wait(timeout=30)


async def _login(http: httpx.AsyncClient, url: str, tenant, user) -> dict[str, str]:
    answer = await http.post(
        f"{url}/v1/auth/login",
        json={"tenant": tenant.slug, "email": user.email, "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


async def test_key_revoked_through_one_process_is_refused_by_the_other(
    two_apis, client, make_tenant, make_user
):
    first, second = two_apis
    tenant = await make_tenant()
    admin = bearer((await login(client, tenant, await make_user(tenant, "admin")))["access_token"])
    created = await client.post(
        "/v1/api-keys", json={"name": "k", "scopes": ["read"]}, headers=admin
    )
    key = {"X-API-Key": created.json()["key"]}
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{second}/v1/me", headers=key)).status_code == 200
        revoked = await http.delete(f"{first}/v1/api-keys/{created.json()['id']}", headers=admin)
        assert revoked.status_code == 200
        assert (await http.get(f"{second}/v1/me", headers=key)).status_code == 401


async def test_demoted_disabled_and_logged_out_users_at_once_in_the_other_process(
    two_apis, make_tenant, make_user
):
    first, second = two_apis
    tenant = await make_tenant()
    owner, admin, member = (
        await make_user(tenant, "owner"),
        await make_user(tenant, "admin"),
        await make_user(tenant, "member"),
    )
    async with httpx.AsyncClient() as http:
        boss = await _login(http, first, tenant, owner)
        demoted = await _login(http, second, tenant, admin)
        disabled = await _login(http, second, tenant, member)
        leaving = await _login(http, second, tenant, member)
        assert (await http.get(f"{second}/v1/usage", headers=demoted)).status_code == 200
        assert (await http.get(f"{second}/v1/me", headers=disabled)).status_code == 200

        change = await http.patch(
            f"{first}/v1/users/{admin.id}", json={"role": "viewer"}, headers=boss
        )
        assert change.status_code == 200
        assert (await http.get(f"{second}/v1/usage", headers=demoted)).status_code == 403
        assert (await http.get(f"{second}/v1/me", headers=demoted)).json()["role"] == "viewer"

        assert (await http.post(f"{first}/v1/auth/logout", headers=leaving)).status_code == 204
        assert (await http.get(f"{second}/v1/me", headers=leaving)).status_code == 401

        change = await http.patch(
            f"{first}/v1/users/{member.id}", json={"status": "disabled"}, headers=boss
        )
        assert change.status_code == 200
        refused = await http.get(f"{second}/v1/me", headers=disabled)
        assert refused.status_code == 403 and refused.json()["type"].endswith("user-disabled")


async def test_a_tenant_suspended_through_one_process_is_refused_by_the_other(
    two_apis, make_tenant, make_user, operator_headers
):
    first, second = two_apis
    tenant = await make_tenant()
    user = await make_user(tenant, "member")
    async with httpx.AsyncClient() as http:
        caller = await _login(http, second, tenant, user)
        assert (await http.get(f"{second}/v1/me", headers=caller)).status_code == 200
        suspended = await http.post(
            f"{first}/v1/admin/tenants/{tenant.slug}/suspend", headers=operator_headers
        )
        assert suspended.status_code == 200
        refused = await http.get(f"{second}/v1/me", headers=caller)
        assert refused.status_code == 403 and refused.json()["type"].endswith("tenant-suspended")
