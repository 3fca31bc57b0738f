"""The worker's Temporal runtime exports the SDK's own metrics (schedule-to-start latency, task
slots) for Prometheus when `TENANTRY_WORKER_METRICS_ADDRESS` is set."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tenantry.worker.client import connect, metrics_runtime
from tests.servers import free_port


@workflow.defn(name="sdk_metrics.hello")
class Hello:
    @workflow.run
    async def run(self) -> str:
        return "hello"


async def test_the_worker_runtime_exports_schedule_to_start_and_slots(settings, temporal_client):
    address = f"127.0.0.1:{free_port()}"  # temporal_client: the server is up
    client = await connect(settings.temporal_address, runtime=metrics_runtime(address))
    queue = f"sdk-metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[Hello], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        result = await client.execute_workflow(
            Hello.run, id=queue, task_queue=queue, execution_timeout=timedelta(seconds=60)
        )
        assert result == "hello"
        async with httpx.AsyncClient() as http:
            exported = (await http.get(f"http://{address}/metrics")).text
    assert "temporal_workflow_task_schedule_to_start_latency" in exported
    assert "temporal_worker_task_slots_available" in exported
    assert metrics_runtime(None) is None
