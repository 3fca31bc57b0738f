"""Temporal stopped while a document and an incident are created: the API still answers (the
outbox holds their workflows' starts), the relay keeps trying, and once Temporal is back both
complete. The whole stack runs as `tenantry run` against a Temporal dev server and a database of
this test's own, so nothing else starts these workflows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tenantry.db.urls import libpq_dsn
from tenantry.worker.devserver import TemporalDevServer
from tests.conftest import OPERATOR_TOKEN, PASSWORD
from tests.incidents.conftest import Receiver
from tests.servers import free_port, wait_for_line

pytestmark = pytest.mark.slow


@pytest.fixture
def own_database(stack, admin_sql):
    name = f"tenantry_down_{uuid.uuid4().hex[:8]}"
    admin_sql.execute(
        sql.SQL("CREATE DATABASE {} OWNER tenantry_owner").format(sql.Identifier(name))
    )
    url = make_url(stack.admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    admin_sql.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
async def own_temporal(tmp_path):
    server = TemporalDevServer(tmp_path / "temporal", port=free_port())
    await server.start()
    yield server
    server.stop()


class Stack:
    """`tenantry run` in a process of its own, its output kept for when something fails."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "run"],
            env={**env, "TENANTRY_PORT": str(self.port), "TENANTRY_LOG_JSON": "false"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = wait_for_line(self.proc, "Application startup complete", "stdout")
        threading.Thread(target=self._keep, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.port}"

    def _keep(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def tail(self) -> str:
        return "".join(self.output[-60:])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def _until(check, what: str, stack: Stack, polls: int = 3000):
    """Poll `check` (bounded: about two minutes) until it returns something true."""
    for _ in range(polls):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.04)
    raise AssertionError(f"never {what}; the stack said:\n{stack.tail()}")


async def test_work_created_while_temporal_is_down_completes_when_it_is_back(
    own_database, own_temporal, tmp_path
):
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": own_database,
        "TENANTRY_HOME": str(tmp_path / "home"),
        "TENANTRY_TEMPORAL_ADDRESS": own_temporal.address,
        "TENANTRY_POOL_TASK_QUEUE": f"down-{uuid.uuid4().hex[:8]}",
        "TENANTRY_OUTBOX_MAX_BACKOFF_SECONDS": "2",
    }
    stack = Stack(env)
    target = Receiver()
    try:
        async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
            headers = await _tenant_admin(http)
            hook = await http.post(
                "/v1/webhooks",
                json={"url": target.url, "events": ["incident.created"]},
                headers=headers,
            )
            assert hook.status_code == 201, hook.text
            target.secret = hook.json()["secret"]

            own_temporal.stop()
            # The API stays in service: it takes the work, the outbox keeps it.
            assert (await http.get("/health/ready")).status_code == 200
            detailed = (await http.get("/health/detailed")).json()["components"]
            assert {c["name"]: c["status"] for c in detailed}["temporal"] == "down"
            document = await http.post(
                "/v1/documents",
                json={"title": "Caldera", "text": "Pulse el rearme tres segundos."},
                headers=headers,
            )
            incident = await http.post(
                "/v1/incidents",
                json={"title": "Sin calefacción", "description": "La caldera no arranca."},
                headers=headers,
            )
            assert document.status_code == 202, document.text
            assert incident.status_code == 201, incident.text

            def attempts() -> list[tuple[str, int]]:
                with psycopg.connect(libpq_dsn(own_database)) as conn:
                    return conn.execute(
                        "SELECT workflow_type, attempts FROM outbox WHERE delivered_at IS NULL "
                        "ORDER BY seq"
                    ).fetchall()

            async def tried_while_down():
                # The relay tries, and every message waits while Temporal cannot be reached.
                pending = await asyncio.to_thread(attempts)
                return len(pending) == 3 and max(n for _, n in pending) >= 2

            await _until(tried_while_down, "tried by the relay while Temporal was down", stack)
            assert {t for t, _ in await asyncio.to_thread(attempts)} == {
                "IngestDocument",
                "IncidentWorkflow",
                "DeliverWebhook",
            }

            await own_temporal.start()  # the same state file and port: Temporal is back

            async def document_ready():
                shown = await http.get(f"/v1/documents/{document.json()['id']}", headers=headers)
                return shown.json()["status"] == "ready"

            async def incident_waits_for_a_person():
                shown = await http.get(
                    f"/v1/incidents/{incident.json()['number']}", headers=headers
                )
                return shown.json()["status"] == "awaiting_approval"

            await _until(document_ready, "ingested after Temporal came back", stack)
            await _until(incident_waits_for_a_person, "triaged after Temporal came back", stack)
            [delivered] = await asyncio.to_thread(target.wait_for, 1)
            assert delivered["valid"] and delivered["body"]["type"] == "incident.created"
            assert await asyncio.to_thread(attempts) == []
    finally:
        target.close()
        stack.stop()


async def _tenant_admin(http: httpx.AsyncClient) -> dict[str, str]:
    bootstrap = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    email = f"ops-{uuid.uuid4().hex[:8]}@tenantry.dev"
    made = await http.post(
        "/v1/admin/operators",
        json={"email": email, "name": "Ops", "password": PASSWORD},
        headers=bootstrap,
    )
    assert made.status_code == 201, made.text
    ops = await http.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
    operator = {"Authorization": f"Bearer {ops.json()['access_token']}"}
    slug = f"down-{uuid.uuid4().hex[:8]}"
    tenant = await http.post(
        "/v1/admin/tenants", json={"slug": slug, "name": "Down"}, headers=operator
    )
    assert tenant.status_code == 201, tenant.text
    user = await http.post(
        f"/v1/admin/tenants/{slug}/users",
        json={"email": f"admin@{slug}.example", "password": PASSWORD, "role": "admin"},
        headers=operator,
    )
    assert user.status_code == 201, user.text
    login = await http.post(
        "/v1/auth/login",
        json={"tenant": slug, "email": f"admin@{slug}.example", "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}
