"""Ingestion activities. Each one is idempotent: run twice, it leaves what one run leaves.

The tenant context is set by the interceptor from the workflow's headers; each activity still
names the tenant of its input when it opens its transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from sqlalchemy import delete, select, text, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tenantry.config import service as config_service
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.events import service as events
from tenantry.knowledge import service as documents
from tenantry.knowledge.embeddings import Embedder
from tenantry.knowledge.extract import UnreadableDocument
from tenantry.knowledge.ingest_types import FailInput, IngestInput
from tenantry.knowledge.models import Chunk, Document, DocumentContent
from tenantry.knowledge.sandbox import Extractor
from tenantry.knowledge.search import vector_literal
from tenantry.limits import quotas
from tenantry.limits.metering import UPSERT
from tenantry.observability import domain as metrics
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

EMBED_BATCH = 32
INSERT_CHUNK = text(
    "INSERT INTO chunks (tenant_id, id, document_id, ordinal, text, tsv, tags, created_at) "
    "VALUES (:tenant_id, :id, :document_id, :ordinal, :text, "
    "to_tsvector(CAST(:lang AS regconfig), :text), :tags, now())"
)


class KnowledgeActivities:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings
        self.extractor = Extractor(settings)

    @activity.defn(name="knowledge.prepare_chunks")
    async def prepare_chunks(self, job: IngestInput) -> int:
        """Extract and chunk; replaces the document's chunks in one transaction. -1: deleted.

        No transaction stays open while the sandbox reads the document (up to its time limit).
        """
        tenant_id, document_id = uuid.UUID(job.tenant_id), uuid.UUID(job.document_id)
        async with self.db.tenant(tenant_id) as session:
            document = await self._document(session, tenant_id, document_id)
            if document is None:
                return -1
            content = await session.scalar(
                select(DocumentContent.content).where(
                    DocumentContent.tenant_id == tenant_id,
                    DocumentContent.document_id == document_id,
                )
            )
            title, source_type = document.title, document.source_type
        try:
            prepared = await self.extractor.prepare(content, source_type, title=title)
        except UnreadableDocument as error:
            raise ApplicationError(
                str(error), type="UnreadableDocument", non_retryable=True
            ) from None
        pieces = prepared.chunks
        async with self.db.tenant(tenant_id) as session:
            document = await self._document(session, tenant_id, document_id)
            if document is None:
                return -1
            tenant = await session.get(Tenant, tenant_id)
            config = await config_service.effective(session, tenant_id=tenant_id, tier=tenant.tier)
            try:
                await quotas.charge_extracted_text(
                    session, document=document, text=prepared.text, tenant=tenant
                )
            except quotas.QuotaTooLarge as error:
                raise ApplicationError(
                    error.detail, type="QuotaTooLarge", non_retryable=True
                ) from error
            await session.execute(
                delete(Chunk).where(Chunk.tenant_id == tenant_id, Chunk.document_id == document_id)
            )
            language = config.config["language"]
            await session.execute(
                INSERT_CHUNK,
                [
                    {
                        "tenant_id": tenant_id,
                        "id": uuid.uuid4(),
                        "document_id": document_id,
                        "ordinal": i,
                        "text": piece,
                        "lang": language,
                        "tags": document.tags,
                    }
                    for i, piece in enumerate(pieces)
                ],
            )
            document.status = "processing"
            document.chunk_count = len(pieces)
        return len(pieces)

    @staticmethod
    async def _document(session, tenant_id: uuid.UUID, document_id: uuid.UUID):
        return await session.scalar(
            select(Document).where(Document.tenant_id == tenant_id, Document.id == document_id)
        )

    @activity.defn(name="knowledge.embed_chunks")
    async def embed_chunks(self, job: IngestInput) -> int:
        """Embed the chunks still without an embedding, a batch at a time.

        The embedder runs between two transactions (a thread for the local model), so no
        connection is held while it computes.
        """
        tenant_id, document_id = uuid.UUID(job.tenant_id), uuid.UUID(job.document_id)
        done = 0
        while True:
            async with self.db.tenant(tenant_id) as session:
                batch = (
                    await session.execute(
                        select(Chunk.id, Chunk.text)
                        .where(
                            Chunk.tenant_id == tenant_id,
                            Chunk.document_id == document_id,
                            Chunk.embedding.is_(None),
                        )
                        .order_by(Chunk.ordinal)
                        .limit(EMBED_BATCH)
                    )
                ).all()
            if not batch:
                return done
            async with _heartbeating(done):
                vectors = await self.embedder.passages([row.text for row in batch])
            async with self.db.tenant(tenant_id) as session:
                await session.execute(
                    text(
                        "UPDATE chunks SET embedding = CAST(:v AS vector) "
                        "WHERE tenant_id = :t AND id = :id AND embedding IS NULL"
                    ),
                    [
                        {"v": vector_literal(v), "t": tenant_id, "id": row.id}
                        for row, v in zip(batch, vectors, strict=True)
                    ],
                )
            done += len(batch)
            activity.heartbeat(done)

    @activity.defn(name="knowledge.finish")
    async def finish(self, job: IngestInput) -> None:
        """Mark the document ready; the first run alone counts it and emits `document.ready`
        (its deliveries go through the outbox in this transaction), so a retry sends nothing."""
        tenant_id, document_id = uuid.UUID(job.tenant_id), uuid.UUID(job.document_id)
        async with self.db.tenant(tenant_id) as session:
            done = await session.scalar(
                update(Document)
                .where(
                    Document.tenant_id == tenant_id,
                    Document.id == document_id,
                    Document.status != "ready",
                )
                .values(status="ready", error=None)
                .returning(Document)
            )
            if done is not None:
                await events.record_event(
                    session,
                    tenant_id=tenant_id,
                    event_type="document.ready",
                    data=documents.payload(done),
                )
                metrics.ingested(
                    await metrics.tenant_named(session, tenant_id),
                    outcome="ready",
                    chunks=done.chunk_count,
                    seconds=(utcnow() - done.created_at).total_seconds(),
                )
                day = await session.scalar(text("SELECT (now() AT TIME ZONE 'utc')::date"))
                await session.execute(
                    UPSERT,
                    {
                        "tenant_id": tenant_id,
                        "day": day,
                        "metric": "documents_ingested",
                        "value": 1,
                    },
                )

    @activity.defn(name="knowledge.fail")
    async def fail(self, job: FailInput) -> None:
        tenant_id, document_id = uuid.UUID(job.tenant_id), uuid.UUID(job.document_id)
        async with self.db.tenant(tenant_id) as session:
            await session.execute(
                delete(Chunk).where(Chunk.tenant_id == tenant_id, Chunk.document_id == document_id)
            )
            failed = await session.scalar(
                update(Document)
                .where(
                    Document.tenant_id == tenant_id,
                    Document.id == document_id,
                    Document.status != "failed",
                )
                .values(status="failed", error=job.reason[:1000], chunk_count=0)
                .returning(Document)
            )
            if failed is not None:  # counted once, however often Temporal retries this
                metrics.ingested(
                    await metrics.tenant_named(session, tenant_id),
                    outcome="failed",
                    chunks=0,
                    seconds=(utcnow() - failed.created_at).total_seconds(),
                )
                await _count(session, tenant_id, "workflow_runs")
                await quotas.release_ingestion(
                    session,
                    tenant_id=tenant_id,
                    day=quotas.ingestion_day(failed),
                    amount=quotas.charged_bytes(failed),
                )

    def all(self) -> list:
        return [self.prepare_chunks, self.embed_chunks, self.finish, self.fail]


@contextlib.asynccontextmanager
async def _heartbeating(progress: int, every_seconds: float = 5):
    """Heartbeat while a batch is embedded: on a busy machine one batch may take longer than the
    heartbeat timeout, and the activity would be retried for nothing."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            activity.heartbeat(progress)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def _count(session, tenant_id: uuid.UUID, *metrics: str) -> None:
    """Usage metering from the worker, in the activity's own transaction."""
    day = await session.scalar(text("SELECT (now() AT TIME ZONE 'utc')::date"))
    for metric in metrics:
        await session.execute(
            UPSERT, {"tenant_id": tenant_id, "day": day, "metric": metric, "value": 1}
        )
