"""`/v1/incidents`: report, list, show (with timeline and workflow state), and a person's actions,
sent to the incident's workflow as signals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from temporalio.service import RPCError

from tenantry.api_support import database
from tenantry.db.session import Database
from tenantry.errors import ServiceUnavailable
from tenantry.events import service as events
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.incidents import service
from tenantry.incidents.schemas import (
    IncidentCreate,
    IncidentOut,
    IncidentPage,
    RejectIn,
    ResolveIn,
    Severity,
    Status,
)
from tenantry.incidents.starts import start_incident, workflow_handle
from tenantry.incidents.types import Action

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
Db = Annotated[Database, Depends(database)]


async def report(
    request: Request, subject, db: Database, body: IncidentCreate, reporter: str, extra=None
) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.create(
            session, tenant_id=subject.tenant.id, data=body, reporter=reporter, extra=extra
        )
        deliveries = await events.record_event(
            session,
            tenant_id=subject.tenant.id,
            event_type="incident.created",
            data=service.payload(incident),
        )
        out = IncidentOut.of(incident)
    await start_incident(request, subject.tenant, incident, deliveries)
    return out


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_WRITE),
)
async def create_incident(
    body: IncidentCreate, subject: Caller, db: Db, request: Request
) -> IncidentOut:
    return await report(request, subject, db, body, subject.audit_name)


@router.get("", response_model=IncidentPage, **guard(Permission.INCIDENTS_READ))
async def list_incidents(
    subject: Caller,
    db: Db,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    area: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> IncidentPage:
    async with db.tenant(subject.tenant.id) as session:
        rows, total = await service.list_incidents(
            session,
            tenant_id=subject.tenant.id,
            status=status_,
            severity=severity,
            area=area,
            limit=limit,
            offset=offset,
        )
        items = [IncidentOut.of(i) for i in rows]
    return IncidentPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{number}", response_model=IncidentOut, **guard(Permission.INCIDENTS_READ))
async def show_incident(number: str, subject: Caller, db: Db) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(session, tenant_id=subject.tenant.id, handle=number)
        return IncidentOut.of(incident, await service.timeline(session, incident=incident))


@router.get("/{number}/workflow", **guard(Permission.INCIDENTS_READ))
async def workflow_state(number: str, subject: Caller, db: Db, request: Request) -> dict[str, Any]:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(session, tenant_id=subject.tenant.id, handle=number)
    try:
        state = await workflow_handle(request, subject.tenant, incident.handle).query("state")
    except RPCError as error:
        raise ServiceUnavailable(
            f"The incident's workflow could not be asked ({error.status.name})."
        ) from error
    return {"number": incident.handle, **state}


async def _act(request: Request, subject, db: Database, number: str, action: Action) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(session, tenant_id=subject.tenant.id, handle=number)
        service.check_transition(incident, action.kind)
        await service.add_event(
            session, incident, actor=action.actor, kind=f"{action.kind}_requested", data={}
        )
        out = IncidentOut.of(incident)
    await workflow_handle(request, subject.tenant, incident.handle).signal("act", action)
    return out


@router.post(
    "/{number}/approve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def approve(number: str, subject: Caller, db: Db, request: Request) -> IncidentOut:
    return await _act(request, subject, db, number, Action("approve", subject.audit_name))


@router.post(
    "/{number}/reject",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def reject(
    number: str, subject: Caller, db: Db, request: Request, body: RejectIn | None = None
) -> IncidentOut:
    return await _act(
        request,
        subject,
        db,
        number,
        Action("reject", subject.audit_name, body.reason if body else None),
    )


@router.post(
    "/{number}/resolve",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    **guard(Permission.INCIDENTS_RESOLVE),
)
async def resolve(
    number: str, body: ResolveIn, subject: Caller, db: Db, request: Request
) -> IncidentOut:
    return await _act(
        request, subject, db, number, Action("resolve", subject.audit_name, body.resolution)
    )


@router.post("/{number}/close", response_model=IncidentOut, **guard(Permission.INCIDENTS_RESOLVE))
async def close(number: str, subject: Caller, db: Db) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(
            session, tenant_id=subject.tenant.id, handle=number, for_update=True
        )
        return IncidentOut.of(
            await service.close(session, incident=incident, actor=subject.audit_name)
        )


@router.post("/{number}/reopen", response_model=IncidentOut, **guard(Permission.INCIDENTS_RESOLVE))
async def reopen(number: str, subject: Caller, db: Db, request: Request) -> IncidentOut:
    async with db.tenant(subject.tenant.id) as session:
        incident = await service.get(
            session, tenant_id=subject.tenant.id, handle=number, for_update=True
        )
        out = IncidentOut.of(
            await service.reopen(session, incident=incident, actor=subject.audit_name)
        )
    await start_incident(request, subject.tenant, incident, [])
    return out
