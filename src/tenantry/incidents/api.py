"""`/v1/incidents`: report, list, show (with timeline and workflow state), and a person's actions,
sent to the incident's workflow as signals through the outbox (committed with the change)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from temporalio.service import RPCError

from tenantry.api_support import database, policy_of
from tenantry.db.session import Database
from tenantry.errors import ServiceUnavailable
from tenantry.events import service as events
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.incidents import service
from tenantry.incidents.schemas import (
    Area,
    Handle,
    IncidentCreate,
    IncidentOut,
    RejectIn,
    ResolveIn,
    Severity,
    Status,
)
from tenantry.incidents.starts import incident_workflow_id, send_action, start_episode
from tenantry.observability import domain as metrics
from tenantry.outbox import service as outbox
from tenantry.pages import Page, PageParams
from tenantry.tenancy.context import tenant_context
from tenantry.tenants.namespaces import has_own_namespace
from tenantry.worker.namespaces import first_found

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
# A query waits for a worker to answer it; with none polling, say so (503) rather than hang.
WORKFLOW_QUERY_TIMEOUT = timedelta(seconds=3)
Db = Annotated[Database, Depends(database)]


async def report(
    subject, db: Database, body: IncidentCreate, reporter: str, extra=None
) -> IncidentOut:
    """The incident, its `incident.created` deliveries and its workflow's start, in one commit."""
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.create(
            session, tenant_id=subject.tenant.id, data=body, reporter=reporter, extra=extra
        )
        await events.record_event(
            session,
            tenant_id=subject.tenant.id,
            event_type="incident.created",
            data=service.payload(incident),
        )
        await start_episode(session, tenant_slug=subject.tenant.slug, incident=incident)
        out = IncidentOut.of(incident)
    metrics.incident_reported(subject.tenant)
    return out


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_WRITE),
)
async def create_incident(body: IncidentCreate, subject: Caller, db: Db) -> IncidentOut:
    return await report(subject, db, body, subject.audit_name)


@router.get("", response_model=Page[IncidentOut], **guard(Permission.INCIDENTS_READ))
async def list_incidents(
    subject: Caller,
    db: Db,
    paging: PageParams,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    area: Annotated[Area | None, Query()] = None,
) -> Page[IncidentOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await service.list_incidents(
            session,
            tenant_id=subject.tenant.id,
            status=status_,
            severity=severity,
            area=area,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        items = [IncidentOut.of(i) for i in rows]
    return Page[IncidentOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get("/{number}", response_model=IncidentOut, **guard(Permission.INCIDENTS_READ))
async def show_incident(number: Handle, subject: Caller, db: Db) -> IncidentOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        incident = await service.get(session, tenant_id=subject.tenant.id, handle=number)
        return IncidentOut.of(incident, await service.timeline(session, incident=incident))


@router.get("/{number}/workflow", **guard(Permission.INCIDENTS_READ))
async def workflow_state(
    number: Handle, subject: Caller, db: Db, request: Request
) -> dict[str, Any]:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(session, tenant_id=subject.tenant.id, handle=number)
        workflow_id = incident_workflow_id(subject.tenant.slug, incident.number, incident.episode)
        queued = await outbox.start_pending(
            session, tenant_id=subject.tenant.id, workflow_id=workflow_id
        )
    base = {"number": incident.handle, "episode": incident.episode}
    if queued:  # not started yet (Temporal away, or the tenant's workflows_in_flight all taken)
        return {**base, "status": "queued", "waiting_for_person": False}
    if incident.status in ENDED and incident.pending_action is None:
        # The episode's run has ended: asking it would need a worker to replay its history,
        # and none may poll where it ran any more (dedicated workers or namespace taken away).
        return {**base, **await _ended_state(db, subject.tenant.id, incident)}
    own = has_own_namespace((await policy_of(request, subject.tenant.id)).config)
    clients = request.app.state.namespaces.clients_of(subject.tenant.slug, own=own)
    try:
        with tenant_context(subject.tenant):
            state = await first_found(
                clients,
                lambda client: client.get_workflow_handle(workflow_id).query(
                    "state", rpc_timeout=WORKFLOW_QUERY_TIMEOUT
                ),
            )
    except RPCError as error:
        raise ServiceUnavailable(
            f"The incident's workflow could not be asked ({error.status.name})."
        ) from error
    return {**base, **state}


ENDED = ("resolved", "closed")


async def _ended_state(db: Database, tenant_id, incident) -> dict[str, Any]:
    """What the `state` query of an ended run answers, read from the incident: escalations are
    those since its episode began (its last reopening)."""
    async with db.tenant(tenant_id, readonly=True) as session:
        events = await service.timeline(session, incident=incident)
    kinds = [event.kind for event in events]
    since = len(kinds) - kinds[::-1].index("reopened") if "reopened" in kinds else 0
    return {
        "status": incident.status,
        "proposal": incident.proposal,
        "confidence": incident.confidence,
        "escalations": kinds[since:].count("escalated"),
        "paused": False,
        "waiting_for_person": False,
        "resolved_by": incident.resolved_by,
    }


async def _act(
    subject, db: Database, number: str, kind: str, text: str | None = None
) -> IncidentOut:
    """202 once the action and its signal to the workflow are committed together."""
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(
            session, tenant_id=subject.tenant.id, handle=number, for_update=True
        )
        await service.request(session, incident=incident, action=kind, actor=subject.audit_name)
        await send_action(
            session,
            tenant_slug=subject.tenant.slug,
            incident=incident,
            kind=kind,
            actor=subject.audit_name,
            text=text,
        )
        return IncidentOut.of(incident)


@router.post(
    "/{number}/approve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def approve(number: Handle, subject: Caller, db: Db) -> IncidentOut:
    return await _act(subject, db, number, "approve")


@router.post(
    "/{number}/reject",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def reject(
    number: Handle, subject: Caller, db: Db, body: RejectIn | None = None
) -> IncidentOut:
    return await _act(subject, db, number, "reject", body.reason if body else None)


@router.post(
    "/{number}/resolve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def resolve(number: Handle, body: ResolveIn, subject: Caller, db: Db) -> IncidentOut:
    return await _act(subject, db, number, "resolve", body.resolution)


@router.post("/{number}/close", response_model=IncidentOut, **guard(Permission.INCIDENTS_RESOLVE))
async def close(number: Handle, subject: Caller, db: Db) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(
            session, tenant_id=subject.tenant.id, handle=number, for_update=True
        )
        return IncidentOut.of(
            await service.close(session, incident=incident, actor=subject.audit_name)
        )


@router.post("/{number}/reopen", response_model=IncidentOut, **guard(Permission.INCIDENTS_RESOLVE))
async def reopen(number: Handle, subject: Caller, db: Db) -> IncidentOut:
    """The incident opens again as a new episode, with a workflow run of its own."""
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(
            session, tenant_id=subject.tenant.id, handle=number, for_update=True
        )
        await service.reopen(session, incident=incident, actor=subject.audit_name)
        await start_episode(session, tenant_slug=subject.tenant.slug, incident=incident)
        return IncidentOut.of(incident)
