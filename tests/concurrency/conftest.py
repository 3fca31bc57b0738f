"""Concurrency tests: every case fires its requests at once and checks the invariant after.

Requests go through the app's own ASGI client (`asyncio.gather`: they interleave at every await,
each on its own pooled connection), and where a second process matters, through a real
`tenantry run` over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter

import pytest

from tests.conftest import bearer, login
from tests.servers import start_api, start_redis


def statuses(responses) -> Counter:
    return Counter(r.status_code for r in responses)


def assert_no_5xx(responses) -> None:
    failed = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert failed == []


async def at_once(*calls):
    """Start every call together and wait for all of them."""
    return await asyncio.gather(*calls)


@pytest.fixture
async def team(client, make_tenant, make_user):
    """A standard tenant with an owner and an admin, and their headers."""
    tenant = await make_tenant(tier="standard")
    owner = await make_user(tenant, "owner")
    admin = await make_user(tenant, "admin")
    return (
        tenant,
        bearer((await login(client, tenant, owner))["access_token"]),
        bearer((await login(client, tenant, admin))["access_token"]),
    )


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def api_process(app, redis_url):
    """A real `tenantry run` (uvicorn, its own pool), sharing limits through a real Redis; after
    the session's app, so that the two never provision the bootstrap token at once."""
    proc, url = start_api({**os.environ, "TENANTRY_REDIS_URL": redis_url})
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
