"""/health/detailed tells the truth about each component, readiness stays with the database, and
the same checks feed tenantry_dependency_up."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.knowledge.conftest import add_document


class TagServer:
    """An Ollama that answers `/api/tags` (seed 003's check) with the given models."""

    def __init__(self, models: list[str]) -> None:
        owner = self
        self.models = models

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = {"models": [{"name": m} for m in owner.models]}
                status = 200 if self.path == "/api/tags" else 404
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm_at(app):
    """Point the app's LLM setting at `url` for one test."""
    original = app.state.settings

    def point(url: str | None) -> None:
        app.state.settings = original.model_copy(update={"llm_url": url, "llm_model": "llama3.2"})
        app.state.metrics_state.read_at = float("-inf")  # the next scrape reads again

    yield point
    app.state.settings = original
    app.state.metrics_state.read_at = float("-inf")


def _by_name(body: dict) -> dict[str, dict]:
    return {c["name"]: c for c in body["components"]}


async def test_detailed_reports_every_component(
    app, client, kb, temporal_client, llm_at, outbox_late_never
):
    tenant, headers = kb
    # A workflow that ran to its end: a worker has polled the shared queue.
    await add_document(client, temporal_client, tenant, headers, title="Guía", text="Texto.")
    ollama = TagServer(["llama3.2:latest"])
    try:
        llm_at(ollama.url)
        response = await client.get("/health/detailed")
    finally:
        ollama.close()
    body = response.json()
    found = _by_name(body)
    assert set(found) == {
        "database", "temporal", "workers", "embedder", "redis", "llm", "outbox",
    }  # fmt: skip
    assert response.status_code == 200, [c for c in body["components"] if c["status"] != "ok"]
    assert body["version"]
    database = found["database"]
    assert database["migration"] == database["head"] and database["pool_size"] > 0
    assert found["temporal"]["namespace"] == "default"
    workers = found["workers"]
    assert workers["task_queue"] == app.state.settings.pool_task_queue
    assert workers["workflow"]["pollers"] >= 1 and workers["activity"]["pollers"] >= 1
    assert workers["workflow"]["last_poll_seconds_ago"] <= workers["stale_after_seconds"]
    assert found["embedder"]["dimension"] == 384 and found["embedder"]["provider"]
    assert found["llm"]["model_available"] is True
    assert found["outbox"]["pending"] >= 0
    for component in found.values():
        assert component["latency_ms"] >= 0


async def test_an_llm_without_the_model_or_away_is_reported_and_ready_stays_up(client, llm_at):
    ollama = TagServer(["mistral:7b"])
    try:
        llm_at(ollama.url)
        missing = _by_name((await client.get("/health/detailed")).json())["llm"]
    finally:
        ollama.close()
    assert missing["status"] == "degraded" and missing["model_available"] is False

    llm_at(ollama.url)  # closed now: nothing listens there
    response = await client.get("/health/detailed")
    assert response.status_code == 503
    assert _by_name(response.json())["llm"]["status"] == "down"
    # The API still serves: readiness does not follow the LLM (or Temporal, or the workers).
    assert (await client.get("/health/ready")).status_code == 200
    scrape = (await client.get("/metrics")).text
    assert 'tenantry_dependency_up{dependency="llm"} 0.0' in scrape
    assert 'tenantry_dependency_up{dependency="database"} 1.0' in scrape


async def test_without_an_llm_proposals_are_extractive_and_that_is_ok(client, llm_at):
    llm_at(None)
    llm = _by_name((await client.get("/health/detailed")).json())["llm"]
    assert llm["status"] == "ok" and llm["configured"] is False


async def test_pollers_are_reported_for_dedicated_queues_too(
    app, client, make_tenant, operator_config, temporal_client
):
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from tenantry.tenants.namespaces import dedicated_task_queue
    from tests.observability.test_ready_workers import Noop

    tenant = await make_tenant(tier="enterprise")
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    queue = dedicated_task_queue(tenant.slug)
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[Noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        app.state.metrics_state.read_at = float("-inf")
        workers = _by_name((await client.get("/health/detailed")).json())["workers"]
        scrape = (await client.get("/metrics")).text
    dedicated = workers["queues"][queue]
    assert dedicated["shared"] is False and dedicated["status"] == "ok"
    assert dedicated["workflow"]["pollers"] >= 1 and dedicated["activity"]["pollers"] == 0
    assert workers["queues"][app.state.settings.pool_task_queue]["shared"] is True
    assert f'tenantry_temporal_task_queue_pollers{{task_queue="{queue}",type="workflow"}}' in scrape


async def test_the_outbox_delay_counts_only_what_the_relay_should_be_delivering(db, make_tenant):
    """A suspended tenant's messages and those queued behind a limit wait by design: they count
    as pending, not as the relay's delay (which turns the outbox component degraded)."""
    from datetime import timedelta

    from sqlalchemy import delete, text

    from tenantry.db.base import utcnow
    from tenantry.outbox.models import OutboxMessage
    from tenantry.tenants import service as tenants

    late, queued, suspended = [await make_tenant() for _ in range(3)]
    async with db.control() as session:
        await tenants.suspend(session, slug=suspended.slug, actor="test")
    now = utcnow()
    # Not yet available to the relay (a retry's backoff), so nothing delivers them meanwhile.
    ages = {late.id: (2, None), queued.id: (3, "workflows_in_flight"), suspended.id: (4, None)}
    try:
        for tenant_id, (hours, waiting_for) in ages.items():
            async with db.tenant(tenant_id) as session:
                session.add(
                    OutboxMessage(
                        tenant_id=tenant_id,
                        kind="start",
                        workflow_id=f"delay-{tenant_id}",
                        workflow_type="Nothing",
                        arg={},
                        created_at=now - timedelta(hours=hours),
                        available_at=now + timedelta(hours=1),
                        waiting_for=waiting_for,
                    )
                )
        async with db.control() as session:
            rows = (await session.execute(text("SELECT * FROM tenant_gauges()"))).all()
        oldest = {t: v for t, name, _, v in rows if name == "outbox_oldest_seconds"}
        pending = {t: v for t, name, _, v in rows if name == "outbox"}
        assert oldest[late.id] >= 2 * 3600
        assert queued.id not in oldest and suspended.id not in oldest
        assert pending[queued.id] == 1 and pending[suspended.id] == 1
    finally:
        for tenant_id in ages:
            async with db.tenant(tenant_id) as session:
                await session.execute(
                    delete(OutboxMessage).where(OutboxMessage.workflow_id == f"delay-{tenant_id}")
                )


async def test_the_outbox_is_degraded_when_its_oldest_due_message_is_late(app, client, monkeypatch):
    from tenantry.observability import components

    monkeypatch.setattr(components, "OUTBOX_LATE_SECONDS", -1.0)  # any age at all is late
    app.state.metrics_state.read_at = float("-inf")
    body = (await client.get("/health/detailed")).json()
    assert _by_name(body)["outbox"]["status"] == "degraded"
    assert body["status"] == "degraded"
