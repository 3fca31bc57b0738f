"""An incident's workflow, reached only through the outbox: its start and a person's actions are
messages written in the transaction that changes the incident.

One workflow run per episode: `{tenant}/incident/{number}` for the first, and
`{tenant}/incident/{number}/{episode}` for each reopening, so a reopened incident never collides
with the run that resolved it (which may still be finishing its last steps).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.incidents.models import Incident
from tenantry.incidents.types import Action, IncidentInput
from tenantry.outbox import service as outbox
from tenantry.worker.queues import workflow_id


def incident_workflow_id(tenant_slug: str, number: int, episode: int = 1) -> str:
    base = workflow_id(tenant_slug, "incident", str(number))
    return base if episode == 1 else f"{base}/{episode}"


def job_of(tenant_slug: str, incident: Incident) -> IncidentInput:
    return IncidentInput(
        str(incident.tenant_id), tenant_slug, str(incident.id), incident.number, incident.episode
    )


async def start_episode(session: AsyncSession, *, tenant_slug: str, incident: Incident) -> None:
    await outbox.start(
        session,
        tenant_id=incident.tenant_id,
        workflow_type="IncidentWorkflow",
        workflow_id=incident_workflow_id(tenant_slug, incident.number, incident.episode),
        arg=job_of(tenant_slug, incident),
        counts_in_flight=True,
        reuse="reject_duplicate",  # an episode runs once; its start delivered twice is one run
    )


async def send_action(
    session: AsyncSession, *, tenant_slug: str, incident: Incident, kind: str, actor: str, text=None
) -> Action:
    action = Action(kind, actor, text, uuid.uuid4().hex)
    await outbox.signal(
        session,
        tenant_id=incident.tenant_id,
        workflow_id=incident_workflow_id(tenant_slug, incident.number, incident.episode),
        name="act",
        arg=action,
    )
    return action
