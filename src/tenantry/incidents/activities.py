"""Incident activities: triage from the tenant's own knowledge, the person's outcomes, escalation.

Each is idempotent (a retry finds the work done and returns what it returned the first time), and
each writes the incident, its timeline, audit and webhook deliveries in one transaction.
"""

from __future__ import annotations

import uuid

from temporalio import activity

from tenantry.audit import service as audit
from tenantry.config import service as config_service
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.errors import AppError
from tenantry.events import service as events
from tenantry.incidents import llm
from tenantry.incidents import service as incidents
from tenantry.incidents.types import Followups, IncidentInput, RejectInput, ResolveInput, Triage
from tenantry.knowledge import search as retrieval
from tenantry.knowledge import service as knowledge
from tenantry.knowledge.embeddings import Embedder
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import effective_limits

RESOLUTION_TAG = "incident-resolution"
SEVERITY_RANK = {s: i for i, s in enumerate(incidents.SEVERITIES)}


def confidence_of(similarity: float | None) -> float:
    """e5 similarities of a right answer sit near 0.9 and of unrelated text near 0.78: a linear
    map of that band to 0..1, calibrated on the labelled set."""
    if similarity is None:
        return 0.0
    return round(min(1.0, max(0.0, (similarity - 0.78) / 0.14)), 3)


class IncidentActivities:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings

    @activity.defn(name="incidents.triage")
    async def triage(self, job: IncidentInput) -> Triage:
        tenant_id, incident_id = uuid.UUID(job.tenant_id), uuid.UUID(job.incident_id)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=incident_id
            )
            tenant = await session.get(Tenant, tenant_id)
            config = (
                await config_service.effective(session, tenant_id=tenant_id, tier=tenant.tier)
            ).config
        question = f"{incident.title}\n\n{incident.description}"
        vector = await self.embedder.query(question)
        async with self.db.tenant(tenant_id, local_settings=retrieval.VECTOR_SETTINGS) as session:
            hits = await retrieval.search(
                session,
                tenant_id=tenant_id,
                language=config["language"],
                query=question,
                query_vector=vector,
                limit=3,
            )
        sources = [llm.Source(i, h.title, h.text) for i, h in enumerate(hits, start=1)]
        text, how = await llm.propose(
            self.settings,
            provider=config["llm"]["provider"],
            incident=question,
            sources=sources,
            timeout_seconds=min(
                config["llm"]["timeout_seconds"], self.settings.llm_timeout_seconds
            ),
        )
        confidence = confidence_of(hits[0].similarity if hits else None)
        thresholds = config["incidents"]
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=incident_id
            )
            if incident.status == "open":
                incident.status, incident.proposal, incident.confidence = (
                    "triaged",
                    text,
                    confidence,
                )
                incident.sources = [
                    {
                        "ref": i,
                        "document_id": str(h.document_id),
                        "title": h.title,
                        "excerpt": h.text[:400],
                        "similarity": h.similarity,
                        "past_incident": RESOLUTION_TAG in h.tags,
                    }
                    for i, h in enumerate(hits, start=1)
                ]
                await incidents.add_event(
                    session,
                    incident,
                    actor="system:triage",
                    kind="triaged",
                    data={"confidence": confidence, "how": how, "sources": len(hits)},
                )
            severity = incident.severity
        auto = (
            bool(hits)
            and SEVERITY_RANK[severity] <= SEVERITY_RANK[thresholds["auto_resolve_max_severity"]]
            and confidence >= thresholds["auto_resolve_min_confidence"]
        )
        return Triage(
            auto,
            text,
            confidence,
            thresholds["escalation_after_minutes"],
            config["webhooks"]["max_attempts"],
        )

    @activity.defn(name="incidents.request_approval")
    async def request_approval(self, job: IncidentInput) -> None:
        async with self.db.tenant(uuid.UUID(job.tenant_id)) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=uuid.UUID(job.tenant_id), incident_id=uuid.UUID(job.incident_id)
            )
            if incident.status == "triaged":
                incident.status = "awaiting_approval"
                await incidents.add_event(
                    session, incident, actor="system:workflow", kind="approval_requested", data={}
                )

    @activity.defn(name="incidents.reject")
    async def reject(self, step: RejectInput) -> None:
        job = step.job
        async with self.db.tenant(uuid.UUID(job.tenant_id)) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=uuid.UUID(job.tenant_id), incident_id=uuid.UUID(job.incident_id)
            )
            if incident.status == "awaiting_approval":
                incident.status = "triaged"
                await incidents.add_event(
                    session,
                    incident,
                    actor=step.actor,
                    kind="proposal_rejected",
                    data={"reason": step.reason},
                )

    @activity.defn(name="incidents.escalate")
    async def escalate(self, job: IncidentInput) -> Followups:
        tenant_id = uuid.UUID(job.tenant_id)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=uuid.UUID(job.incident_id)
            )
            if incident.status not in ("triaged", "awaiting_approval"):
                return Followups()
            before = incident.severity
            incident.severity = incidents.raised(before)
            await incidents.add_event(
                session,
                incident,
                actor="system:escalation",
                kind="escalated",
                data={"from": before, "to": incident.severity},
            )
            ids = await events.record_event(
                session,
                tenant_id=tenant_id,
                event_type="incident.escalated",
                data=incidents.payload(incident),
            )
        return Followups(delivery_ids=[str(i) for i in ids], severity=incident.severity)

    @activity.defn(name="incidents.resolve")
    async def resolve(self, step: ResolveInput) -> Followups:
        job, tenant_id = step.job, uuid.UUID(step.job.tenant_id)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=uuid.UUID(job.incident_id)
            )
            if incident.status in ("resolved", "closed"):  # a retry after the commit: nothing new
                return Followups()
            incident.status, incident.resolution, incident.resolved_by = (
                "resolved",
                step.resolution,
                step.actor,
            )
            incident.resolved_at = utcnow()
            await incidents.add_event(
                session, incident, actor=step.actor, kind="resolved", data={"how": step.how}
            )
            await audit.record(
                session,
                tenant_id=tenant_id,
                actor=step.actor,
                action="incident.resolved",
                target=f"incident:{incident.handle}",
                after={"how": step.how, "severity": incident.severity},
            )
            document_id = await self._learn(session, incident, tenant_id)
            ids = await events.record_event(
                session,
                tenant_id=tenant_id,
                event_type="incident.resolved",
                data=incidents.payload(incident),
            )
        return Followups(delivery_ids=[str(i) for i in ids], document_id=document_id)

    async def _learn(self, session, incident, tenant_id: uuid.UUID) -> str | None:
        """The resolution becomes a knowledge document, unless the tenant's quota is used up."""
        tenant = await session.get(Tenant, tenant_id)
        body = f"{incident.title}\n\n{incident.description}\n\nResolución / resolution:\n{incident.resolution}"
        try:
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
                max_bytes=self.settings.max_document_bytes,
            )
        except AppError as error:  # a full quota must not undo the resolution itself
            await incidents.add_event(
                session,
                incident,
                actor="system:learning",
                kind="not_learned",
                data={"reason": str(error)[:300]},
            )
            return None
        incident.knowledge_document_id = document.id
        return str(document.id) if created else None

    def all(self) -> list:
        return [self.triage, self.request_approval, self.reject, self.escalate, self.resolve]
