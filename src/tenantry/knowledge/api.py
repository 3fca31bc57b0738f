"""`/v1/documents` and `/v1/search`: a tenant's knowledge base."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from tenantry.api_support import database, policy_of, settings_of
from tenantry.api_types import JSON_MAX_BYTES, Tag, Title, text
from tenantry.db.session import Database
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.knowledge import search as retrieval
from tenantry.knowledge import service
from tenantry.knowledge.extract import source_type_of
from tenantry.knowledge.schemas import DocumentCreate, DocumentOut, HitOut, SearchIn, SearchOut
from tenantry.knowledge.uploads import check_content, parse_fields
from tenantry.limits.middleware import QuotaExceeded
from tenantry.observability import domain as metrics
from tenantry.observability.metrics import RATE_LIMITED
from tenantry.observability.tenant_labels import tenant_label
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings

router = APIRouter(tags=["knowledge"])
UPLOAD_PATH = "/v1/documents/upload"
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]


async def _create(
    request: Request, subject, db: Database, settings: Settings, **fields
) -> JSONResponse:
    """202 once the document and its ingestion's outbox message are committed together."""
    policy = await policy_of(request, subject.tenant.id)
    async with db.tenant(subject.tenant.id) as session:
        document, created = await service.create(
            session,
            tenant_id=subject.tenant.id,
            actor=subject.audit_name,
            limits=policy.limits,
            max_bytes=settings.max_document_bytes,
            **fields,
        )
    if created:
        request.app.state.meter.add(subject.tenant.id, "documents_submitted")
    body = DocumentOut.of(document).model_dump(mode="json")
    code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    return JSONResponse(
        body, status_code=code, headers={"Location": f"/v1/documents/{document.id}"}
    )


# The same content sent again is the same document: 200, with the one already there.
ALREADY_THERE = {200: {"model": DocumentOut, "description": "The same content, already there."}}


@router.post(
    "/v1/documents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=ALREADY_THERE,
    **guard(Permission.CONTENT_WRITE),
)
async def create_document(
    body: DocumentCreate, subject: Caller, db: Db, settings: Config, request: Request
):
    return await _create(
        request,
        subject,
        db,
        settings,
        title=body.title,
        content=body.text.encode(),
        source_type="txt",
        filename=None,
        tags=body.tags,
        metadata=body.metadata,
    )


@router.post(
    UPLOAD_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DocumentOut,
    responses=ALREADY_THERE,
    **guard(Permission.CONTENT_WRITE, 415),
)
async def upload_document(
    subject: Caller,
    db: Db,
    settings: Config,
    request: Request,
    file: Annotated[UploadFile, File(description=".txt, .md, .html or .pdf")],
    title: Annotated[Title | None, Form()] = None,
    tags: Annotated[text(33 * 65), Form(description="Comma-separated.")] = "",
    metadata: Annotated[text(JSON_MAX_BYTES), Form(description="A JSON object.")] = "{}",
):
    fields = parse_fields(title=title, tags=tags, metadata=metadata, filename=file.filename)
    kind = source_type_of(file.filename, file.content_type)
    content = await file.read(settings.max_document_bytes + 1)
    if len(content) <= settings.max_document_bytes:
        check_content(content, kind)
    return await _create(
        request,
        subject,
        db,
        settings,
        title=fields.title,
        content=content,
        source_type=kind,
        filename=fields.filename,
        tags=fields.tags,
        metadata=fields.metadata,
    )


@router.get("/v1/documents", response_model=Page[DocumentOut], **guard(Permission.CONTENT_READ))
async def list_documents(
    subject: Caller,
    db: Db,
    paging: PageParams,
    status_: Annotated[
        Literal["pending", "processing", "ready", "failed"] | None, Query(alias="status")
    ] = None,
    tag: Annotated[Tag | None, Query()] = None,
) -> Page[DocumentOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await service.list_documents(
            session,
            tenant_id=subject.tenant.id,
            status=status_,
            tag=tag,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        items = [DocumentOut.of(d) for d in rows]
    return Page[DocumentOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get(
    "/v1/documents/{document_id}", response_model=DocumentOut, **guard(Permission.CONTENT_READ)
)
async def show_document(document_id: uuid.UUID, subject: Caller, db: Db) -> DocumentOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        return DocumentOut.of(
            await service.get(session, tenant_id=subject.tenant.id, document_id=document_id)
        )


@router.delete(
    "/v1/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    **guard(Permission.CONTENT_WRITE),
)
async def delete_document(document_id: uuid.UUID, subject: Caller, db: Db) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await service.remove(session, tenant_id=subject.tenant.id, document_id=document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def charge_search(request: Request, policy, tenant) -> None:
    """Count one search against the tenant's `searches_per_minute`, or refuse it (429).

    Every search a tenant's caller asks for goes through here, whichever route it came by. The
    searches an incident's workflow makes are the platform's own (bounded by the tenant's
    incidents and workflows in flight) and are not counted.
    """
    decision = await request.app.state.rates.hit(
        policy="searches",
        tenant_key=str(policy.tenant_id),
        per_minute=policy.limits.searches_per_minute,
    )
    if not decision.allowed:
        RATE_LIMITED.labels(tenant_label(tenant), tenant.tier, "searches_per_minute").inc()
        raise QuotaExceeded(
            f"The tenant's limit of {decision.quota} searches a minute is reached.",
            headers={**decision.headers(), "Retry-After": str(max(1, decision.reset_seconds))},
        )


@router.post("/v1/search", response_model=SearchOut, **guard(Permission.CONTENT_READ))
async def search(body: SearchIn, subject: Caller, db: Db, request: Request) -> SearchOut:
    policy = await policy_of(request, subject.tenant.id)
    await charge_search(request, policy, subject.tenant)
    vector = await request.app.state.embedder.query(body.query)
    started = time.perf_counter()
    async with db.tenant(subject.tenant.id, local_settings=retrieval.VECTOR_SETTINGS) as session:
        hits = await retrieval.search(
            session,
            tenant_id=subject.tenant.id,
            language=policy.config["language"],
            query=body.query,
            query_vector=vector,
            limit=body.limit,
            tags=body.filters.tags or None,
            document_ids=body.filters.documents or None,
        )
    metrics.searched(
        subject.tenant, source="api", seconds=time.perf_counter() - started, hits=len(hits)
    )
    request.app.state.meter.add(subject.tenant.id, "searches")
    return SearchOut(query=body.query, hits=[HitOut.of(h) for h in hits])
