"""Schemathesis over the OpenAPI schema, against the real app on a real socket: no input may get a
5xx, and every answer must be one the schema documents, in the shape it documents.

The app under test is a second instance on the session's PostgreSQL and Temporal, beside a worker
process of its own (a worker and an outbox relay). It works on tenants of its own: `fuzz-a`'s admin
calls the tenant routes, an operator calls the admin routes, and the admin routes that name a
tenant name `fuzz-b` (which may be suspended or deleted on the way). `fuzz-a` has dedicated
workers, so its workflows are picked up by the worker under test rather than the session's. The
tier templates it may change are put back afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import OPERATOR_TOKEN, PASSWORD
from tests.servers import free_port

EXAMPLES = 15  # per operation: about 900 requests, around a minute on two idle cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
HEALTH_CHECKS = [c for c in CHECKS if c is not not_a_server_error]
HUGE = 10**12  # the fuzz tenant's limits: high enough that fuzzing reaches every handler
OWNER = f"fuzz-a-{uuid.uuid4().hex[:6]}"
VICTIM = f"fuzz-b-{uuid.uuid4().hex[:6]}"


class _Stack(uvicorn.Server):
    """The API and a worker process's work (workers, a relay) on one loop, as `tenantry run` has."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event, stack, settings) -> None:
        super().__init__(config)
        self.ready, self.stack, self.settings = ready, stack, settings
        self.workers, self.tasks, self.db = [], [], None

    async def startup(self, sockets=None) -> None:
        from tenantry.db.urls import libpq_dsn
        from tenantry.keys.service import TenantKeys, platform_key
        from tenantry.tenants.namespaces import tenant_namespace
        from tenantry.worker.client import connect
        from tenantry.worker.namespaces import Namespaces
        from tenantry.worker.queues import dedicated_task_queue
        from tenantry.worker.runner import build_relay, build_worker

        await super().startup(sockets)
        state = self.config.app.state  # the lifespan has loaded the embedder
        self.db = self.stack.database(pool_size=2)
        keys = TenantKeys(self.db, platform_key(self.settings))
        # The app's own client is lazy (it only asks workflows their state); a worker needs a
        # connected one. The relay places work as the session's relay does (same settings).
        client = await connect(
            self.settings.temporal_address, self.settings.temporal_namespace, keys=keys
        )
        relay = await build_relay(
            self.db,
            keys=keys,
            settings=self.settings,
            dsn=libpq_dsn(self.stack.app_url),
            admin_url=self.stack.admin_url,
        )
        # `fuzz-a`'s own queue (in the platform's namespace and in its own), and the pool's: the
        # fuzzed configuration may turn its dedicated workers (or its own namespace) on and off,
        # and a tenant whose queue no worker polls has workflows nobody answers.
        own = await Namespaces(client).ready(tenant_namespace(OWNER))
        self.workers = [
            build_worker(
                polled,
                task_queue=queue,
                db=self.db,
                embedder=state.embedder,
                settings=self.settings,
            )
            for polled, queue in (
                (client, dedicated_task_queue(OWNER)),
                (own, dedicated_task_queue(OWNER)),
                (client, self.settings.pool_task_queue),
            )
        ]
        self.tasks = [
            *(asyncio.create_task(worker.run()) for worker in self.workers),
            asyncio.create_task(relay.run(), name="fuzz-relay"),
        ]
        await relay.listening.wait()
        self.ready.set()

    async def shutdown(self, sockets=None) -> None:
        if self.workers:
            await asyncio.gather(*(worker.shutdown() for worker in self.workers))
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.db.dispose()
        await super().shutdown(sockets)


@pytest.fixture(scope="module")
def live_api(stack, settings, app) -> Iterator[str]:
    """A second app and its worker process on a real socket (the session's `app` provisioned the
    bootstrap token)."""
    from tenantry.app import create_app

    port = free_port()
    ready = threading.Event()
    server = _Stack(
        uvicorn.Config(
            create_app(settings, database_url=stack.app_url),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        ),
        ready,
        stack,
        settings,
    )

    def serve() -> None:
        try:
            asyncio.run(server.serve())
        finally:
            ready.set()  # a server that failed to start must not leave the wait hanging

    thread = threading.Thread(target=serve, name="fuzzed-api", daemon=True)
    thread.start()
    assert ready.wait(120) and server.started, "the API under test did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(60)
    assert not thread.is_alive(), "the API under test (and its worker) did not stop"


def _ok(response: httpx.Response) -> dict:
    assert response.is_success, response.text
    return response.json() if response.content else {}


@pytest.fixture(scope="module")
def fuzz_world(live_api, operator_headers) -> Iterator[dict]:
    """The callers, on tenants of their own; the tier templates as they were, restored after."""
    with httpx.Client(base_url=live_api, timeout=60) as http:
        boot = operator_headers  # the bootstrap token is spent once the first operator exists
        email = f"fuzz-{uuid.uuid4().hex[:8]}@tenantry.dev"
        _ok(
            http.post(
                "/v1/admin/operators",
                json={"email": email, "name": "Fuzz", "password": PASSWORD},
                headers=boot,
            )
        )
        token = _ok(http.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD}))
        operator = {"Authorization": f"Bearer {token['access_token']}"}
        slugs = {"a": OWNER, "b": VICTIM}
        for slug in slugs.values():
            _ok(
                http.post(
                    "/v1/admin/tenants",
                    json={"slug": slug, "name": "Fuzz", "tier": "enterprise"},
                    headers=operator,
                )
            )
            _ok(
                http.patch(
                    f"/v1/admin/tenants/{slug}/limits",
                    json={
                        "requests_per_minute": HUGE,
                        "concurrent_requests": 1000,
                        "searches_per_minute": HUGE,
                        "documents": HUGE,
                        "users": HUGE,
                        "api_keys": HUGE,
                        "ingestion_bytes_per_day": HUGE,
                        "workflows_in_flight": HUGE,
                    },
                    headers=operator,
                )
            )
        users = {}
        for role in ("admin", "leaver"):
            user_email = f"{role}@{slugs['a']}.example"
            _ok(
                http.post(
                    f"/v1/admin/tenants/{slugs['a']}/users",
                    json={"email": user_email, "password": PASSWORD, "role": "admin"},
                    headers=operator,
                )
            )
            tokens = _ok(
                http.post(
                    "/v1/auth/login",
                    json={"tenant": slugs["a"], "email": user_email, "password": PASSWORD},
                )
            )
            users[role] = {"Authorization": f"Bearer {tokens['access_token']}"}
        # Its workflows go to its own queue, which only the worker under test polls; an
        # operator's setting, made as operators make it (`tenantry config set`).
        from typer.testing import CliRunner

        from tenantry.cli.main import app as cli

        routed = CliRunner().invoke(
            cli, ["config", "set", slugs["a"], "features.dedicated_workers=true"]
        )
        assert routed.exit_code == 0, routed.output
        external = _ok(
            http.post(
                "/v1/api-keys", json={"name": "erp", "scopes": ["external"]}, headers=users["admin"]
            )
        )
        tiers = {
            t["tier"]: t["version"]
            for t in _ok(http.get("/v1/admin/tiers", headers=operator))["items"]
        }
        yield {
            "operator": operator,
            "admin": users["admin"],
            # Logging out ends the caller's session: that route gets a user of its own.
            "leaver": users["leaver"],
            "external": {"Authorization": f"Bearer {external['key']}"},
        }
        for tier, version in tiers.items():
            _ok(
                http.post(
                    f"/v1/admin/tiers/{tier}/config/rollback",
                    json={"version": version},
                    headers=operator,
                )
            )


def _openapi() -> dict:
    """The schema the app serves, built without a database: the same code as the live app's."""
    from tenantry.app import create_app
    from tenantry.settings import Settings

    quiet = Settings(
        environment="test",
        bootstrap_token=OPERATOR_TOKEN,
        demo_tenants=False,
        jwt_secret=uuid.uuid4().hex * 2,  # so that building it writes no key file
    )
    return create_app(quiet, database_url="postgresql+psycopg://schema@/only").openapi()


FUZZ = schemathesis.openapi.from_dict(
    _openapi(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261130,
            "generation": {
                "max-examples": EXAMPLES,
                "mode": "all",
                "allow-x00": True,
                "database": "none",
                "deterministic": True,
            },
            # Coverage's exhaustive boundary cases alone took minutes here; fuzzing in both modes
            # (valid and invalid inputs) reaches the same boundaries within the budget.
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": False}},
            # Operator routes that name a tenant name the fuzz run's own.
            "parameters": {"slug": VICTIM},
        }
    ),
)


def caller_for(operation, world: dict) -> dict[str, str]:
    permission = operation.definition.raw.get("x-permission")
    if operation.path == "/v1/auth/logout":
        return world["leaver"]
    if permission == "external":
        return world["external"]
    if permission in ("operator", "operator:bootstrap"):
        return world["operator"]
    if permission == "public":
        return {}
    return world["admin"]


@FUZZ.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_server_error(case, fuzz_world, live_api):
    # A health route's 503 reports a component's state (documented, with its JSON body), not a
    # failure to handle its input: the other checks still hold it to its schema.
    checks = HEALTH_CHECKS if case.operation.path.startswith("/health/") else CHECKS
    case.call_and_validate(
        base_url=live_api, headers=caller_for(case.operation, fuzz_world), checks=checks
    )
