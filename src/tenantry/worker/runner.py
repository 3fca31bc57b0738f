"""The worker: the workflows and activities of every feature, on the pool queue or a tenant's own."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from tenantry.db.session import Database
from tenantry.events.activities import EventActivities
from tenantry.events.workflows import DeliverWebhook
from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.workflows import IncidentWorkflow
from tenantry.knowledge.activities import KnowledgeActivities
from tenantry.knowledge.embeddings import Embedder
from tenantry.knowledge.workflows import IngestDocument
from tenantry.settings import Settings
from tenantry.worker.retry import RetryTransactions

WORKFLOWS = [IngestDocument, IncidentWorkflow, DeliverWebhook]


def build_worker(
    client: Client,
    *,
    task_queue: str,
    db: Database,
    embedder: Embedder,
    settings: Settings,
    graceful_shutdown_timeout: timedelta = timedelta(0),
) -> Worker:
    activities = [
        *KnowledgeActivities(db, embedder, settings).all(),
        *IncidentActivities(db, embedder, settings).all(),
        *EventActivities(db, settings).all(),
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        max_concurrent_activities=8,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        interceptors=[RetryTransactions(db)],
    )
