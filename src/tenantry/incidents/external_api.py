"""Seed 003's external API, for systems that hold an API key of scope `external`:
`POST /v1/external/incidents` and `GET /v1/external/knowledge/search`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from tenantry.api_support import database, policy_of
from tenantry.api_types import text
from tenantry.db.session import Database
from tenantry.errors import Forbidden
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.incidents.api import report
from tenantry.incidents.schemas import ExternalIncidentCreate, IncidentCreate, IncidentOut
from tenantry.knowledge import search as retrieval
from tenantry.knowledge.api import charge_search
from tenantry.knowledge.schemas import HitOut, SearchOut
from tenantry.observability import domain as metrics

router = APIRouter(prefix="/v1/external", tags=["external"])
Db = Annotated[Database, Depends(database)]


async def _enabled(request: Request, subject):
    policy = await policy_of(request, subject.tenant.id)
    if not policy.config["features"]["external_api"]:
        raise Forbidden(
            "The external API is switched off for this tenant.", code="feature-disabled"
        )
    return policy


@router.post(
    "/incidents",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentOut,
    **guard(Permission.EXTERNAL),
)
async def external_incident(
    body: ExternalIncidentCreate, subject: Caller, db: Db, request: Request
) -> IncidentOut:
    await _enabled(request, subject)
    data = IncidentCreate(**body.model_dump(exclude={"reporter", "external_ref"}))
    reporter = f"external:{subject.name}:{body.reporter}"
    return await report(subject, db, data, reporter, extra={"external_ref": body.external_ref})


@router.get("/knowledge/search", response_model=SearchOut, **guard(Permission.EXTERNAL))
async def external_search(
    subject: Caller,
    db: Db,
    request: Request,
    q: Annotated[text(1000, min_length=1), Query(description="The question.")],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> SearchOut:
    policy = await _enabled(request, subject)
    await charge_search(request, policy, subject.tenant)
    vector = await request.app.state.embedder.query(q)
    started = time.perf_counter()
    async with db.tenant(subject.tenant.id, local_settings=retrieval.VECTOR_SETTINGS) as session:
        hits = await retrieval.search(
            session,
            tenant_id=subject.tenant.id,
            language=policy.config["language"],
            query=q,
            query_vector=vector,
            limit=limit,
        )
    metrics.searched(
        subject.tenant, source="external", seconds=time.perf_counter() - started, hits=len(hits)
    )
    request.app.state.meter.add(subject.tenant.id, "searches")
    return SearchOut(query=q, hits=[HitOut.of(h) for h in hits])
