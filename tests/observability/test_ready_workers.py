"""/health/ready follows the workers: 503 naming the `workers` check once no worker has polled the
shared task queue for `ready_worker_stale_seconds`, after a grace as long from the start, and
ready again as soon as a worker polls."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

from httpx import ASGITransport, AsyncClient
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tenantry.app import create_app

TURN_SECONDS = 60  # a bound on waiting, not a synchronisation: each wait polls the endpoint


@workflow.defn(name="ready_workers.noop")
class Noop:
    @workflow.run
    async def run(self) -> None:
        return None


@asynccontextmanager
async def _app(stack, settings, **update):
    queue = f"ready-{uuid.uuid4().hex[:8]}"  # no worker has ever polled it
    app = create_app(
        settings.model_copy(update={"pool_task_queue": queue, **update}),
        database_url=stack.app_url,
    )
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client, queue


async def _until(client: AsyncClient, status: int) -> dict:
    """Poll /health/ready until it answers `status`; its body."""
    async with asyncio.timeout(TURN_SECONDS):
        while True:
            response = await client.get("/health/ready")
            if response.status_code == status:
                return response.json()
            await asyncio.sleep(0.1)


def _workers(body: dict) -> dict:
    return next(check for check in body["checks"] if check["name"] == "workers")


async def test_ready_turns_with_the_workers_polling_the_shared_queue(
    stack, settings, temporal_client
):
    async with _app(stack, settings, ready_worker_stale_seconds=2) as (client, queue):
        # Nobody polls: once the grace and the window have passed, not ready, saying why.
        body = await _until(client, 503)
        assert body["status"] == "unavailable"
        workers = _workers(body)
        assert workers["status"] == "down" and workers["task_queue"] == queue
        assert queue in workers["detail"] and "2 s" in workers["detail"]
        assert [c["status"] for c in body["checks"] if c["name"] == "database"] == ["ok"]

        worker = Worker(
            temporal_client,
            task_queue=queue,
            workflows=[Noop],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        async with worker:
            # A worker polls: ready again.
            body = await _until(client, 200)
            assert _workers(body)["status"] == "ok"
            assert _workers(body)["last_poll_seconds_ago"] <= 2
        # It stopped: its last poll grows older than the window, and readiness turns again.
        body = await _until(client, 503)
        assert _workers(body)["status"] == "down"


async def test_a_replica_just_started_is_ready_before_any_worker_polled(stack, settings):
    async with _app(stack, settings, ready_worker_stale_seconds=300) as (client, _queue):
        response = await client.get("/health/ready")
        assert response.status_code == 200
        workers = _workers(response.json())
        assert workers["status"] == "ok" and workers["last_poll_seconds_ago"] is None
        assert 0 < workers["grace_seconds_left"] <= 300


async def test_the_check_is_off_with_zero(stack, settings):
    async with _app(stack, settings, ready_worker_stale_seconds=0) as (client, _queue):
        response = await client.get("/health/ready")
    assert response.status_code == 200
    assert "workers" not in {check["name"] for check in response.json()["checks"]}
