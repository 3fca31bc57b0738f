"""Set up the load test's tenants through the admin API, as an operator would.

`tenants` tenants over the three tiers (2 free : 2 standard : 1 enterprise), each with
`identities` callers: about 60% users logged in with a password (JWT access tokens) and the rest
API keys, all with the admin role or scope so that every task of the mix is allowed to every
caller. Each tenant gets one document and one incident before the load, so lists and searches
have something of the tenant's own to answer with.

Tenant limits are raised for these tenants by an operator override (`LOAD_LIMITS`): the load
measures the platform's capacity, and a tier's request rate, concurrency, search rate, user and
key counts or workflows in flight would otherwise answer 429 at rates the test must reach.

The plan (hosts, credentials, the ids each tenant owns) is written as JSON for the generator.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import httpx

PASSWORD = "Load-Test-Horse-42-Battery"
TIERS = ("free", "standard", "free", "standard", "enterprise")
LOAD_LIMITS = {
    "requests_per_minute": 1_000_000,
    "concurrent_requests": 1_000,
    "searches_per_minute": 1_000_000,
    "documents": 1_000_000,
    "ingestion_bytes_per_day": 10_000_000_000,
    "users": 1_000,
    "api_keys": 1_000,
    "workflows_in_flight": 10_000,
}
SEED_TEXT = (
    "Runbook for {slug}: when the boiler pressure drops below one bar, refill the circuit through "
    "the filling loop, bleed the radiators, and check the expansion vessel. Tenant {slug} keeps "
    "this document for its own engineers."
)


class ProvisionError(RuntimeError):
    pass


class RetryingClient(httpx.AsyncClient):
    """Setup is not the measurement: a 503 (load shed) or 429 is retried after its Retry-After."""

    async def request(self, method, url, **kwargs) -> httpx.Response:
        for _ in range(20):
            response = await super().request(method, url, **kwargs)
            if response.status_code not in (429, 503):
                return response
            await asyncio.sleep(min(10.0, float(response.headers.get("retry-after", "1"))))
        return response


def _ok(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        raise ProvisionError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else {}


async def operator_headers(client: httpx.AsyncClient, bootstrap_token: str) -> dict[str, str]:
    """A fresh operator, created with the bootstrap token (or an operator's access token, once
    the bootstrap token is spent), logged in with its password."""
    email = f"load-ops-{uuid.uuid4().hex[:8]}@example.com"
    _ok(
        await client.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Load test", "password": PASSWORD},
            headers={"Authorization": f"Bearer {bootstrap_token}"},
        ),
        201,
    )
    token = _ok(
        await client.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD}),
        200,
    )["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def provision_tenant(
    client: httpx.AsyncClient, ops: dict[str, str], *, slug: str, tier: str, identities: int
) -> dict[str, Any]:
    _ok(
        await client.post(
            "/v1/admin/tenants",
            json={"slug": slug, "name": f"Load {slug}", "tier": tier},
            headers=ops,
        ),
        201,
    )
    _ok(await client.patch(f"/v1/admin/tenants/{slug}/limits", json=LOAD_LIMITS, headers=ops), 200)
    users = max(1, math.ceil(identities * 0.6))
    callers: list[dict[str, Any]] = []
    for n in range(users):
        email = f"user{n}@{slug}.example"
        _ok(
            await client.post(
                f"/v1/admin/tenants/{slug}/users",
                json={"email": email, "password": PASSWORD, "role": "admin"},
                headers=ops,
            ),
            201,
        )
        token = _ok(
            await client.post(
                "/v1/auth/login", json={"tenant": slug, "email": email, "password": PASSWORD}
            ),
            200,
        )["access_token"]
        callers.append({"kind": "jwt", "headers": {"Authorization": f"Bearer {token}"}})
    admin = callers[0]["headers"]
    for n in range(identities - users):
        key = _ok(
            await client.post(
                "/v1/api-keys", json={"name": f"load-{n}", "scopes": ["admin"]}, headers=admin
            ),
            201,
        )["key"]
        callers.append({"kind": "api_key", "headers": {"X-API-Key": key}})
    document = _ok(
        await client.post(
            "/v1/documents",
            json={"title": f"Boiler runbook {slug}", "text": SEED_TEXT.format(slug=slug)},
            headers=admin,
        ),
        200,
        202,
    )
    incident = _ok(
        await client.post(
            "/v1/incidents",
            json={"title": "Boiler pressure low", "description": f"Seen at {slug}'s site."},
            headers=admin,
        ),
        201,
    )
    return {
        "slug": slug,
        "tier": tier,
        "callers": callers,
        "owned_ids": [document["id"], incident["id"]],
    }


async def provision(
    base_url: str,
    bootstrap_token: str,
    *,
    tenants: int,
    identities: int,
    parallel: int = 4,
    prefix: str | None = None,
) -> dict[str, Any]:
    """Create everything and return the plan (see the module's docstring)."""
    prefix = prefix or f"load-{uuid.uuid4().hex[:6]}"
    timeout = httpx.Timeout(120.0)
    async with RetryingClient(base_url=base_url, timeout=timeout) as client:
        ops = await operator_headers(client, bootstrap_token)
        gate = asyncio.Semaphore(parallel)

        async def one(i: int) -> dict[str, Any]:
            async with gate:
                return await provision_tenant(
                    client,
                    ops,
                    slug=f"{prefix}-{i:03d}",
                    tier=TIERS[i % len(TIERS)],
                    identities=identities,
                )

        planned = await asyncio.gather(*(one(i) for i in range(tenants)))
    return {
        "host": base_url,
        "tenants": list(planned),
        "identities_per_tenant": identities,
        "limit_overrides": LOAD_LIMITS,
    }
