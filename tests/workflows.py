"""Waiting for workflows that the outbox relay starts after the API's commit, and a worker of a
tenant's own task queue whose incident activities a test replaces."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from tenantry.events.activities import EventActivities
from tenantry.events.workflows import DeliverWebhook
from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.workflows import IncidentWorkflow
from tenantry.knowledge.activities import KnowledgeActivities
from tenantry.knowledge.workflows import IngestDocument
from tenantry.outbox.activities import OutboxActivities


async def started(temporal_client, workflow_id: str, *, polls: int = 1500):
    """The workflow's handle once it exists (bounded: about 30 s)."""
    handle = temporal_client.get_workflow_handle(workflow_id)
    for _ in range(polls):
        try:
            await handle.describe()
            return handle
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id} was never started")


@contextlib.asynccontextmanager
async def dedicated_worker(
    temporal_client, stack, tenant, steps: type[IncidentActivities], *, embedder, settings
) -> AsyncIterator[IncidentActivities]:
    """A worker on the tenant's own queue (`tenant-{slug}-jobs`) running `steps`, incident
    activities that wait or fail on purpose, beside the real ingestion, delivery and outbox
    ones; yields the `steps` it runs, and closes their database pool after."""
    db = stack.database(pool_size=4)
    activities = steps(db, embedder, settings)
    worker = Worker(
        temporal_client,
        task_queue=f"tenant-{tenant.slug}-jobs",
        workflows=[IncidentWorkflow, DeliverWebhook, IngestDocument],
        activities=[
            *activities.all(),
            *KnowledgeActivities(db, embedder, settings).all(),
            *EventActivities(db, settings).all(),
            *OutboxActivities(db).all(),
        ],
    )
    try:
        async with worker:
            yield activities
    finally:
        await db.dispose()
