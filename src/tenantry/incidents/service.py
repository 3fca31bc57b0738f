"""Incidents: numbered per tenant without gaps, listed, shown with their timeline, and moved only
along the allowed transitions (anything else is a 409)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.paging import Keyset, page
from tenantry.errors import Conflict, NotFound
from tenantry.incidents.models import Incident, IncidentEvent
from tenantry.incidents.schemas import IncidentCreate

SEVERITIES = ("low", "medium", "high", "critical")
# Which states each person's action may start from.
TRANSITIONS = {
    "approve": {"awaiting_approval"},
    "reject": {"awaiting_approval"},
    "resolve": {"open", "triaged", "awaiting_approval"},
    "close": {"resolved"},
    "reopen": {"resolved", "closed"},
}
HANDLE = re.compile(r"^INC-(\d{1,9})$")
# The counter row is locked by the increment until the transaction ends, so concurrent creations
# in one tenant queue up, and a rolled-back one gives its number back: no gaps.
NEXT_NUMBER = text(
    "INSERT INTO incident_counters (tenant_id, last_number) VALUES (:tid, 1) "
    "ON CONFLICT (tenant_id) DO UPDATE SET last_number = incident_counters.last_number + 1 "
    "RETURNING last_number"
)


# Newest first: numbers grow with time and are unique within a tenant.
INCIDENTS = Keyset("incidents", (Incident.number, Incident.id), descending=True)


class InvalidTransition(Conflict):
    code, title = "invalid-transition", "Not allowed in this state"


class NoSource(Conflict):
    code, title = "no-source", "Nothing to approve"


def number_of(handle: str) -> int:
    match = HANDLE.match(handle)
    if match is None:
        raise NotFound(f"No incident {handle}: handles look like INC-12.")
    return int(match.group(1))


async def create(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    data: IncidentCreate,
    reporter: str,
    extra: dict | None = None,
) -> Incident:
    number = await session.scalar(NEXT_NUMBER, {"tid": tenant_id})
    incident = Incident(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        number=number,
        title=data.title,
        description=data.description,
        area=data.area,
        severity=data.severity,
        reporter=reporter,
        assignee=data.assignee,
        status="open",
        sources=[],
        episode=1,
    )
    session.add(incident)
    await session.flush()
    await add_event(session, incident, actor=reporter, kind="reported", data=extra or {})
    return incident


async def add_event(
    session: AsyncSession, incident: Incident, *, actor: str, kind: str, data: dict[str, Any]
) -> None:
    session.add(
        IncidentEvent(
            tenant_id=incident.tenant_id,
            id=uuid.uuid4(),
            incident_id=incident.id,
            actor=actor,
            kind=kind,
            data=data,
        )
    )
    await session.flush()


async def get(
    session: AsyncSession, *, tenant_id: uuid.UUID, handle: str, for_update: bool = False
) -> Incident:
    query = select(Incident).where(
        Incident.tenant_id == tenant_id, Incident.number == number_of(handle)
    )
    incident = await session.scalar(query.with_for_update() if for_update else query)
    if incident is None:
        raise NotFound(f"No incident {handle}.")
    return incident


async def get_by_id(
    session: AsyncSession, *, tenant_id: uuid.UUID, incident_id: uuid.UUID
) -> Incident:
    incident = await session.scalar(
        select(Incident)
        .where(Incident.tenant_id == tenant_id, Incident.id == incident_id)
        .with_for_update()
    )
    if incident is None:
        raise NotFound("No such incident.")
    return incident


async def timeline(session: AsyncSession, *, incident: Incident) -> list[IncidentEvent]:
    return list(
        await session.scalars(
            select(IncidentEvent)
            .where(
                IncidentEvent.tenant_id == incident.tenant_id,
                IncidentEvent.incident_id == incident.id,
            )
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )


async def list_incidents(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    status: str | None,
    severity: str | None,
    area: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Incident], str | None]:
    query = select(Incident).where(Incident.tenant_id == tenant_id)
    if status:
        query = query.where(Incident.status == status)
    if severity:
        query = query.where(Incident.severity == severity)
    if area:
        query = query.where(Incident.area == area)
    return await page(session, query, keyset=INCIDENTS, cursor=cursor, limit=limit)


def check_transition(incident: Incident, action: str) -> None:
    if incident.status not in TRANSITIONS[action]:
        allowed = ", ".join(sorted(TRANSITIONS[action]))
        raise InvalidTransition(
            f"{incident.handle} is {incident.status}; '{action}' needs it to be {allowed}."
        )


def check_action(incident: Incident, action: str) -> None:
    """A person's action for the workflow: allowed in this state, none already on its way, and
    an approval only of a proposal that cites a source."""
    check_transition(incident, action)
    if incident.pending_action is not None:
        raise InvalidTransition(
            f"{incident.handle} already has '{incident.pending_action}' on its way; "
            "its workflow carries it out first."
        )
    if action == "approve" and not incident.sources:
        raise NoSource(
            f"{incident.handle}'s proposal cites no source from the knowledge base, so there is "
            "nothing to approve; resolve it with your own text."
        )


async def request(session: AsyncSession, *, incident: Incident, action: str, actor: str) -> None:
    """Record that a person asked for `action`; approvals and resolutions stay pending until the
    workflow carries them out."""
    check_action(incident, action)
    if action in ("approve", "resolve"):
        incident.pending_action = action
    await add_event(session, incident, actor=actor, kind=f"{action}_requested", data={})


async def close(session: AsyncSession, *, incident: Incident, actor: str) -> Incident:
    check_transition(incident, "close")
    incident.status = "closed"
    await add_event(session, incident, actor=actor, kind="closed", data={})
    return incident


async def reopen(session: AsyncSession, *, incident: Incident, actor: str) -> Incident:
    check_transition(incident, "reopen")
    incident.status = "open"
    incident.resolution = incident.resolved_by = incident.resolved_at = None
    incident.proposal, incident.confidence, incident.sources = None, None, []
    incident.pending_action = None
    incident.episode += 1
    await add_event(
        session, incident, actor=actor, kind="reopened", data={"episode": incident.episode}
    )
    return incident


def raised(severity: str) -> str:
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]


def payload(incident: Incident) -> dict[str, Any]:
    return {
        "number": incident.handle,
        "id": str(incident.id),
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "area": incident.area,
        "resolution": incident.resolution,
        "resolved_by": incident.resolved_by,
    }
