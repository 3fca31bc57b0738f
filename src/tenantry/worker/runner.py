"""The worker: the workflows and activities of every feature, on the pool queue or a tenant's own."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from tenantry.db.session import Database
from tenantry.knowledge.activities import KnowledgeActivities
from tenantry.knowledge.embeddings import Embedder
from tenantry.knowledge.workflows import IngestDocument
from tenantry.settings import Settings

WORKFLOWS = [IngestDocument]


def build_worker(
    client: Client, *, task_queue: str, db: Database, embedder: Embedder, settings: Settings
) -> Worker:
    knowledge = KnowledgeActivities(db, embedder, settings)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=knowledge.all(),
        max_concurrent_activities=8,
    )
