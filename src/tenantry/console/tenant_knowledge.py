"""Tenant users: documents with their ingestion status (polled while it changes), uploads and
the search box."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Config, Db
from tenantry.console.forms import parse
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.knowledge import api as knowledge_api
from tenantry.knowledge.schemas import SearchIn

router = APIRouter()
UNFINISHED = {"pending", "processing"}


async def _documents(subject, db, cursor: str | None):
    found = await lists.documents(subject, db, cursor)
    busy = any(d.status in UNFINISHED for d in found.items)
    return found, busy


@router.get("/documents", **guard(Permission.CONTENT_READ))
async def document_list(
    request: Request, subject: Caller, db: Db, cursor: lists.Cursor = None
) -> HTMLResponse:
    found, busy = await _documents(subject, db, cursor)
    return render.page(
        request,
        "tenant/documents.html",
        documents=found.items,
        cursor=cursor or "",
        next_cursor=found.next_cursor,
        busy=busy,
        query="",
        hits=None,
    )


@router.get("/documents/status", **guard(Permission.CONTENT_READ))
async def document_status(
    request: Request, subject: Caller, db: Db, cursor: lists.Cursor = None
) -> HTMLResponse:
    """The documents table alone, which htmx polls while any document is still being ingested."""
    found, busy = await _documents(subject, db, cursor)
    return render.fragment(
        request,
        "tenant/documents_table.html",
        documents=found.items,
        busy=busy,
        cursor=cursor or "",
    )


@router.post("/documents", **guard(Permission.CONTENT_WRITE))
async def upload(
    request: Request,
    subject: Caller,
    db: Db,
    settings: Config,
    file: Annotated[UploadFile, File()],
    title: Annotated[str, Form(max_length=300)] = "",
    tags: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    answer = await knowledge_api.upload_document(
        subject, db, settings, request, file, title.strip() or None, tags, "{}"
    )
    created = json.loads(answer.body)  # the API's own 202 (or 200: the same content again)
    return render.done(
        request, "/console/documents", f"{created['title']} uploaded: its ingestion has started."
    )


@router.get("/search", **guard(Permission.CONTENT_READ))
async def search(
    request: Request, subject: Caller, db: Db, q: Annotated[str, Query(max_length=1000)] = ""
) -> HTMLResponse:
    """A GET form, so a search has an address and works without JavaScript."""
    hits = None
    if q.strip():
        found = await knowledge_api.search(parse(SearchIn, query=q), subject, db, request)
        hits = found.hits
    return render.page(request, "tenant/search.html", query=q, hits=hits)
