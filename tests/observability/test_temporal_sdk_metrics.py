"""The worker's Temporal runtime records the SDK's own metrics (schedule-to-start latency, task
slots, pollers) into a buffer that is drained into the platform's registry: they answer on the
worker's own /metrics, with no port of their own, and carry only bounded labels."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tenantry.observability.temporal_sdk import EXPORTED, SdkMetrics
from tenantry.runtime.worker_health import WorkerHealth
from tenantry.worker.client import connect
from tests.servers import free_port

BOUNDED = {"namespace", "task_queue", "worker_type", "poller_type"}


@workflow.defn(name="sdk_metrics.hello")
class Hello:
    @workflow.run
    async def run(self) -> str:
        return "hello"


def _samples(scrape: str, queue: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if sample.labels.get("task_queue") == queue:
                found.setdefault(sample.name, []).append(sample)
    return found


async def test_the_worker_metrics_carry_schedule_to_start_and_slots(settings, temporal_client):
    sdk = SdkMetrics()  # temporal_client: the server is up
    client = await connect(settings.temporal_address, runtime=sdk.runtime)
    queue = f"sdk-metrics-{uuid.uuid4().hex[:8]}"
    health = WorkerHealth({}, before_scrape=sdk.drain)
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        async with Worker(
            client, task_queue=queue, workflows=[Hello], workflow_runner=UnsandboxedWorkflowRunner()
        ):
            result = await client.execute_workflow(
                Hello.run, id=queue, task_queue=queue, execution_timeout=timedelta(seconds=60)
            )
            assert result == "hello"
            async with httpx.AsyncClient() as http:
                scrape = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await health.stop()
    found = _samples(scrape, queue)
    started = found["temporal_workflow_task_schedule_to_start_latency_seconds_count"]
    assert [s.labels for s in started] == [{"namespace": "default", "task_queue": queue}]
    assert started[0].value >= 1
    slots = {
        s.labels["worker_type"]: s.value for s in found["temporal_worker_task_slots_available"]
    }
    assert slots.get("WorkflowWorker", 0) > 0
    assert found["temporal_workflow_task_queue_poll_succeed_total"][0].value >= 1
    for samples in found.values():
        for sample in samples:
            assert set(sample.labels) - {"le"} <= BOUNDED, sample  # no workflow type or id


def test_only_listed_metrics_are_exported_each_with_bounded_labels():
    for name, family in EXPORTED.items():
        assert name.startswith("temporal_")
        assert set(family._labelnames) <= BOUNDED, name
