"""Temporal's own SDK metrics (schedule-to-start latency, task slots, pollers) in the worker's
`/metrics`, beside the platform's, on no port of their own.

The worker's Temporal runtime records into a `MetricBuffer`; `drain()` moves what it holds into
prometheus_client metrics declared here, so they go wherever the worker's counts go (its own
`/metrics`, or under `tenantry run` the multiprocess files every API process reads). Bounded on
purpose: only the metrics listed in `EXPORTED`, only the labels listed with each (namespace, task
queue, worker or poller type: never a workflow type or id), every other update dropped.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Counter, Gauge
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

from tenantry.observability import metrics as m

log = structlog.get_logger("tenantry.worker")
# Core drops updates (and logs) once the buffer is full: tens of thousands between drains is
# what the SDK's documentation asks for; a busy worker records a few per task.
BUFFER_SIZE = 50_000
DRAIN_SECONDS = 1.0


# Core's name for each metric (prefix `temporal_`) -> ours (metrics.SDK_*) and its labels.
EXPORTED = {
    "temporal_workflow_task_schedule_to_start_latency": m.SDK_WORKFLOW_SCHEDULE_TO_START,
    "temporal_activity_schedule_to_start_latency": m.SDK_ACTIVITY_SCHEDULE_TO_START,
    "temporal_worker_task_slots_available": m.SDK_SLOTS_AVAILABLE,
    "temporal_worker_task_slots_used": m.SDK_SLOTS_USED,
    "temporal_num_pollers": m.SDK_POLLERS,
    "temporal_workflow_task_queue_poll_succeed": m.SDK_WORKFLOW_POLLS_SUCCEEDED,
    "temporal_workflow_task_queue_poll_empty": m.SDK_WORKFLOW_POLLS_EMPTY,
    "temporal_activity_poll_no_task": m.SDK_ACTIVITY_POLLS_EMPTY,
    "temporal_workflow_task_execution_failed": m.SDK_WORKFLOW_TASKS_FAILED,
    "temporal_activity_execution_failed": m.SDK_ACTIVITIES_FAILED,
}


class SdkMetrics:
    """A Temporal runtime whose metrics are drained into the platform's registry."""

    def __init__(self, buffer_size: int = BUFFER_SIZE) -> None:
        self.buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))

    def drain(self) -> int:
        """Move every buffered update into its metric; how many updates there were."""
        updates = self.buffer.retrieve_updates()
        for update in updates:
            family = EXPORTED.get(update.metric.name)
            if family is None:
                continue
            values = (str(update.attributes.get(k, "")) for k in family._labelnames)
            metric = family.labels(*values)
            if isinstance(metric, Counter):
                metric.inc(max(0, update.value))
            elif isinstance(metric, Gauge):
                metric.set(update.value)
            else:
                metric.observe(update.value)
        return len(updates)

    async def run(self, every: float = DRAIN_SECONDS) -> None:
        while True:
            try:
                self.drain()
            except Exception:  # metrics must never take the worker down
                log.exception("temporal sdk metrics not drained")
            await asyncio.sleep(every)
