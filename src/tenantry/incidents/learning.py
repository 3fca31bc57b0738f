"""The learning loop: a resolution becomes a knowledge document of the tenant (its ingestion
started through the outbox with it), unless it has nothing to teach."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import AppError
from tenantry.incidents import service as incidents
from tenantry.incidents.llm import NO_SOURCE
from tenantry.incidents.models import Incident
from tenantry.knowledge import service as knowledge
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import effective_limits

RESOLUTION_TAG = "incident-resolution"


def nothing_to_teach(incident: Incident, how: str) -> str | None:
    """Why this resolution must not become knowledge, or None."""
    if NO_SOURCE in (incident.resolution or ""):
        return "the resolution only says that no source covers the incident"
    if how in ("approved", "auto") and not incident.sources:
        return "an approved proposal that cites no source"
    return None


async def learn(
    session: AsyncSession, incident: Incident, *, how: str, max_bytes: int
) -> str | None:
    """The new document's id; None when nothing was learned (and the timeline says why)."""
    reason = nothing_to_teach(incident, how)
    if reason is None:
        try:
            return await _document(session, incident, max_bytes)
        except AppError as error:  # a full quota must not undo the resolution itself
            reason = str(error)[:300]
    await incidents.add_event(
        session, incident, actor="system:learning", kind="not_learned", data={"reason": reason}
    )
    return None


async def _document(session: AsyncSession, incident: Incident, max_bytes: int) -> str | None:
    tenant_id: uuid.UUID = incident.tenant_id
    tenant = await session.get(Tenant, tenant_id)
    body = (
        f"{incident.title}\n\n{incident.description}\n\n"
        f"Resolución / resolution:\n{incident.resolution}"
    )
    document, created = await knowledge.create(
        session,
        tenant_id=tenant_id,
        title=f"{incident.handle}: {incident.title}",
        content=body.encode(),
        source_type="txt",
        filename=None,
        tags=[RESOLUTION_TAG, *([incident.area] if incident.area else [])],
        metadata={"incident": incident.handle},
        actor="system:learning",
        limits=effective_limits(tenant.tier, tenant.limit_overrides),
        max_bytes=max_bytes,
    )
    incident.knowledge_document_id = document.id
    return str(document.id) if created else None
