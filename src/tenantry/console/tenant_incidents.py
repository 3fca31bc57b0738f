"""Tenant users: incidents, the assistant's proposal with its sources, and the decisions on it
(approve, reject, resolve), which the incident's workflow then carries out: the page polls the
incident's status while it does."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Db
from tenantry.console.forms import parse
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.incidents import api as incidents_api
from tenantry.incidents.schemas import IncidentCreate, RejectIn, ResolveIn

router = APIRouter(prefix="/incidents")
# Where the workflow waits for a person or is done: nothing to poll for.
SETTLED = {"awaiting_approval", "resolved", "closed"}
StatusFilter = Literal["", "open", "triaged", "awaiting_approval", "resolved", "closed"]


@router.get("", **guard(Permission.INCIDENTS_READ))
async def incident_list(
    request: Request,
    subject: Caller,
    db: Db,
    status: StatusFilter = "",
    cursor: lists.Cursor = None,
) -> HTMLResponse:
    found = await lists.incidents(subject, db, cursor, status or None)
    return render.page(
        request,
        "tenant/incidents.html",
        incidents=found.items,
        status=status,
        next_cursor=found.next_cursor,
    )


@router.post("", **guard(Permission.INCIDENTS_WRITE))
async def report(
    request: Request,
    subject: Caller,
    db: Db,
    title: Annotated[str, Form(max_length=300)],
    description: Annotated[str, Form(max_length=20_000)],
    severity: Annotated[str, Form(max_length=16)] = "medium",
) -> Response:
    body = parse(IncidentCreate, title=title, description=description, severity=severity)
    created = await incidents_api.create_incident(body, subject, db)
    return render.done(
        request, f"/console/incidents/{created.number}", f"Incident {created.number} reported."
    )


@router.get("/{number}", **guard(Permission.INCIDENTS_READ))
async def incident_page(request: Request, number: str, subject: Caller, db: Db) -> HTMLResponse:
    incident = await incidents_api.show_incident(number, subject, db)
    return render.page(request, "tenant/incident.html", incident=incident, settled=SETTLED)


@router.get("/{number}/status", **guard(Permission.INCIDENTS_READ))
async def incident_status(request: Request, number: str, subject: Caller, db: Db) -> HTMLResponse:
    """The incident's status and proposal, which htmx polls until the workflow settles."""
    incident = await incidents_api.show_incident(number, subject, db)
    return render.fragment(
        request, "tenant/incident_state.html", incident=incident, settled=SETTLED
    )


@router.post("/{number}/approve", **guard(Permission.INCIDENTS_RESOLVE))
async def approve(request: Request, number: str, subject: Caller, db: Db) -> Response:
    await incidents_api.approve(number, subject, db)
    return render.done(request, f"/console/incidents/{number}", "Proposal approved.")


@router.post("/{number}/reject", **guard(Permission.INCIDENTS_RESOLVE))
async def reject(
    request: Request,
    number: str,
    subject: Caller,
    db: Db,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    body = parse(RejectIn, reason=reason.strip() or None)
    await incidents_api.reject(number, subject, db, body)
    return render.done(request, f"/console/incidents/{number}", "Proposal rejected.")


@router.post("/{number}/resolve", **guard(Permission.INCIDENTS_RESOLVE))
async def resolve(
    request: Request,
    number: str,
    subject: Caller,
    db: Db,
    resolution: Annotated[str, Form(max_length=20_000)],
) -> Response:
    body = parse(ResolveIn, resolution=resolution)
    await incidents_api.resolve(number, body, subject, db)
    return render.done(request, f"/console/incidents/{number}", "Incident resolved.")
