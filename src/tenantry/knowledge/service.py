"""Documents: created (deduplicated by content, within quotas), listed, shown and deleted."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import any_, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.errors import NotFound, PayloadTooLarge
from tenantry.knowledge.ingest_types import IngestInput
from tenantry.knowledge.models import Document, DocumentContent
from tenantry.limits import quotas
from tenantry.outbox import service as outbox
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import Limits
from tenantry.worker.queues import workflow_id

# Newest first, as before; `id` breaks ties between documents of the same instant.
DOCUMENTS = Keyset("documents", (Document.created_at, Document.id), descending=True)


async def create(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    title: str,
    content: bytes,
    source_type: str,
    filename: str | None,
    tags: list[str],
    metadata: dict[str, Any],
    actor: str,
    limits: Limits,
    max_bytes: int,
) -> tuple[Document, bool]:
    """The new document (pending), or the existing one with the same content: (document, created)."""
    if len(content) > max_bytes:
        raise PayloadTooLarge(
            f"Documents may be at most {max_bytes} bytes; this one is {len(content)}."
        )
    content_hash = hashlib.sha256(content).hexdigest()
    # Held until commit: parallel creations deduplicate and count one after another.
    await quotas.hold(session, tenant_id=tenant_id, quota="documents")
    existing = await session.scalar(
        select(Document).where(
            Document.tenant_id == tenant_id, Document.content_hash == content_hash
        )
    )
    if existing is not None:
        return existing, False
    await quotas.reserve(
        session,
        tenant_id=tenant_id,
        quota="documents",
        limit=limits.documents,
        used=select(func.count()).where(Document.tenant_id == tenant_id),
    )
    created_at = utcnow()
    await quotas.charge_ingestion(
        session,
        tenant_id=tenant_id,
        day=created_at.date(),
        amount=len(content),
        limit=limits.ingestion_bytes_per_day,
    )
    document = Document(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        title=title,
        source_type=source_type,
        filename=filename,
        content_hash=content_hash,
        size_bytes=len(content),
        tags=sorted(set(tags)),
        metadata_=metadata,
        status="pending",
        chunk_count=0,
        created_by=actor,
        created_at=created_at,
    )
    session.add(document)
    await session.flush()
    session.add(DocumentContent(tenant_id=tenant_id, document_id=document.id, content=content))
    await session.flush()
    await _ingest_later(session, document)
    return document, True


def ingest_workflow_id(tenant_slug: str, document_id: uuid.UUID | str) -> str:
    return workflow_id(tenant_slug, "ingest", str(document_id))


async def _ingest_later(session: AsyncSession, document: Document) -> None:
    """The ingestion workflow, started by the relay once this transaction commits."""
    slug = await session.scalar(select(Tenant.slug).where(Tenant.id == document.tenant_id))
    await outbox.start(
        session,
        tenant_id=document.tenant_id,
        workflow_type="IngestDocument",
        workflow_id=ingest_workflow_id(slug, document.id),
        arg=IngestInput(str(document.tenant_id), slug, str(document.id)),
        counts_in_flight=True,
        reuse="allow_duplicate_failed_only",
    )


async def ingest_unfinished(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    """Start again the ingestion of the tenant's documents neither ready nor failed: after a
    restore or a clone, rows brought back `pending` or `processing` have no workflow of theirs
    running (one still running from before is kept: starting it counts as done)."""
    unfinished = (
        await session.scalars(
            select(Document).where(
                Document.tenant_id == tenant_id, Document.status.in_(("pending", "processing"))
            )
        )
    ).all()
    slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    for document in unfinished:
        await outbox.start(
            session,
            tenant_id=tenant_id,
            workflow_type="IngestDocument",
            workflow_id=ingest_workflow_id(slug, document.id),
            arg=IngestInput(str(tenant_id), slug, str(document.id)),
            counts_in_flight=True,
            reuse="allow_duplicate",  # an earlier run may have finished before the restore
        )
    if unfinished:
        await outbox.wake(session, tenant_id=tenant_id)
    return len(unfinished)


def payload(document: Document) -> dict[str, Any]:
    """What a `document.ready` webhook says of the document."""
    return {
        "id": str(document.id),
        "title": document.title,
        "source_type": document.source_type,
        "filename": document.filename,
        "tags": list(document.tags),
        "status": document.status,
        "chunk_count": document.chunk_count,
    }


async def list_documents(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    status: str | None,
    tag: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Document], str | None]:
    query = select(Document).where(Document.tenant_id == tenant_id)
    if status:
        query = query.where(Document.status == status)
    if tag:
        query = query.where(literal(tag) == any_(Document.tags))
    return await page(session, query, keyset=DOCUMENTS, cursor=cursor, limit=limit)


async def get(session: AsyncSession, *, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Document:
    document = await session.scalar(
        select(Document).where(Document.tenant_id == tenant_id, Document.id == document_id)
    )
    if document is None:
        raise NotFound("No such document.")
    return document


async def remove(session: AsyncSession, *, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
    """The document, its content and its chunks (foreign keys cascade); an ingestion still
    waiting is withdrawn, one running is cancelled."""
    document = await get(session, tenant_id=tenant_id, document_id=document_id)
    if document.status in ("pending", "processing"):
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
        await outbox.withdraw_or_cancel(
            session, tenant_id=tenant_id, workflow_id=ingest_workflow_id(slug, document_id)
        )
    await session.execute(
        delete(Document).where(Document.tenant_id == tenant_id, Document.id == document_id)
    )


async def stored(session: AsyncSession, *, tenant_id: uuid.UUID) -> dict[str, int]:
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Document.size_bytes), 0)).where(
                Document.tenant_id == tenant_id
            )
        )
    ).one()
    return {"documents": int(row[0]), "stored_bytes": int(row[1])}
