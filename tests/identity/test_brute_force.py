"""Brute force behind proxies: X-Forwarded-For is believed from the operator's proxies only, the
address threshold is counted on the real client, and operators are apart from tenants."""

from __future__ import annotations

import os
import subprocess
import uuid

import httpx
import pytest
from httpx import ASGITransport, AsyncClient

from tenantry.tenancy.client_address import TrustedProxies
from tests.conftest import PASSWORD
from tests.servers import start_api

ADDRESS_LIMIT = 4


def wrong(tenant, n: int) -> dict:
    return {"tenant": tenant.slug, "email": f"nobody-{n}@example.com", "password": "Wrong-Pass-123"}


def test_the_client_is_the_first_address_no_trusted_proxy_stands_for():
    proxies = TrustedProxies(["10.0.0.0/8", "192.0.2.1"])
    assert proxies.client("198.51.100.9", "203.0.113.5") == "198.51.100.9"  # peer untrusted
    assert proxies.client("10.1.1.1", "203.0.113.5") == "203.0.113.5"
    # A client's own entries to the left are never believed.
    assert proxies.client("10.1.1.1", "1.2.3.4, 203.0.113.5, 192.0.2.1") == "203.0.113.5"
    assert proxies.client("10.1.1.1", None) == "10.1.1.1"
    assert not TrustedProxies([]) and TrustedProxies([]).uvicorn_setting() == ""
    assert TrustedProxies(["*"]).client("198.51.100.9", "203.0.113.5") == "203.0.113.5"


@pytest.fixture(scope="module")
def plain_api(app):
    """A real `tenantry run` (uvicorn) with no trusted proxy configured, on loopback."""
    env = {**os.environ, "TENANTRY_LOGIN_ADDRESS_FAILURES_PER_MINUTE": str(ADDRESS_LIMIT)}
    env.pop("TENANTRY_TRUSTED_PROXIES", None)
    proc, url = start_api(env)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
async def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(
    plain_api, make_tenant
):
    """Before, uvicorn believed X-Forwarded-For from loopback: a new address per attempt, and
    the per-address throttle never saw two failures from the same one."""
    tenant = await make_tenant()
    async with httpx.AsyncClient(base_url=plain_api, timeout=60) as http:
        answers = [
            await http.post(
                "/v1/auth/login",
                json=wrong(tenant, n),
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
            )
            for n in range(ADDRESS_LIMIT + 2)
        ]
    assert [a.status_code for a in answers] == [401] * ADDRESS_LIMIT + [429, 429]


def client_from(app, peer: str) -> AsyncClient:
    return AsyncClient(
        transport=ASGITransport(app=app, client=(peer, 40000)), base_url="http://test"
    )


async def test_a_trusted_proxy_names_the_client_and_the_rest_is_ignored(
    app, make_tenant, monkeypatch
):
    monkeypatch.setitem(app.state._state, "trusted_proxies", TrustedProxies(["10.77.0.0/16"]))
    monkeypatch.setattr(app.state.login_throttle, "per_address", ADDRESS_LIMIT)
    tenant = await make_tenant()
    behind = f"203.0.113.{uuid.uuid4().int % 200 + 20}"
    async with client_from(app, "10.77.0.5") as proxy:
        for n in range(ADDRESS_LIMIT):
            headers = {"X-Forwarded-For": f"1.2.3.{n}, {behind}"}  # the left part is the client's
            assert (
                await proxy.post("/v1/auth/login", json=wrong(tenant, n), headers=headers)
            ).status_code == 401
        refused = await proxy.post(
            "/v1/auth/login", json=wrong(tenant, 99), headers={"X-Forwarded-For": behind}
        )
        assert refused.status_code == 429
        someone_else = await proxy.post(
            "/v1/auth/login", json=wrong(tenant, 98), headers={"X-Forwarded-For": "203.0.113.250"}
        )
        assert someone_else.status_code == 401
    # From a peer that is not a proxy, X-Forwarded-For changes nothing.
    async with client_from(app, f"198.18.{uuid.uuid4().int % 250}.7") as direct:
        statuses = [
            (
                await direct.post(
                    "/v1/auth/login",
                    json=wrong(tenant, 200 + n),
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
            ).status_code
            for n in range(ADDRESS_LIMIT + 1)
        ]
    assert statuses == [401] * ADDRESS_LIMIT + [429]


async def test_tenant_failures_from_an_address_never_lock_an_operator_out(
    app, make_tenant, monkeypatch, operator_headers
):
    monkeypatch.setattr(app.state.login_throttle, "per_address", ADDRESS_LIMIT)
    tenant = await make_tenant()
    email = f"ops-{uuid.uuid4().hex[:8]}@tenantry.dev"
    async with client_from(app, f"198.18.{uuid.uuid4().int % 250}.9") as office:
        created = await office.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Ops", "password": PASSWORD},
            headers=operator_headers,
        )
        assert created.status_code == 201, created.text
        for n in range(ADDRESS_LIMIT):
            await office.post("/v1/auth/login", json=wrong(tenant, n))
        assert (await office.post("/v1/auth/login", json=wrong(tenant, 50))).status_code == 429
        operator = await office.post(
            "/v1/admin/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert operator.status_code == 200, operator.text
