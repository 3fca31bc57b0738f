"""The authenticated request path stays lean: the credential is read once, and no dependency of any
route hops through the thread pool (FastAPI runs a plain `def` dependency there)."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute

from tenantry.identity import access_tokens
from tests.conftest import bearer, login


async def test_a_jwt_is_verified_once_per_request(client, make_tenant, make_user, monkeypatch):
    tenant = await make_tenant()
    token = (await login(client, tenant, await make_user(tenant, "member")))["access_token"]
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200  # policy cached
    calls = []
    real = access_tokens.decode
    monkeypatch.setattr(access_tokens, "decode", lambda *a: calls.append(1) or real(*a))
    answer = await client.get("/v1/me", headers=bearer(token))
    assert answer.status_code == 200 and answer.json()["kind"] == "user"
    assert len(calls) == 1


def _dependencies(dependant):
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _routes(routes):
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router, kept as such
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_no_route_has_a_dependency_that_runs_in_the_thread_pool(app):
    sync = set()
    routes = list(_routes(app.routes))
    assert len(routes) > 50
    for route in routes:
        for dep in _dependencies(route.dependant):
            if dep.call is not None and not inspect.iscoroutinefunction(dep.call):
                sync.add(f"{route.path}: {getattr(dep.call, '__qualname__', dep.call)}")
    assert not sync, sorted(sync)
