"""Incident activities: triage from the tenant's own knowledge, the person's outcomes, escalation.

Each writes the incident, its timeline, audit and webhook deliveries (with their workflows' starts,
through the outbox) in one transaction, and records what it did under a key (the incident, its
episode, an ordinal) in that same transaction: a retry after the commit returns the record and
does nothing twice.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

from temporalio import activity

from tenantry.audit import service as audit
from tenantry.config import service as config_service
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.events import service as events
from tenantry.incidents import llm
from tenantry.incidents import service as incidents
from tenantry.incidents.learning import RESOLUTION_TAG, learn
from tenantry.incidents.types import (
    EscalateInput,
    Followups,
    IncidentInput,
    RefuseInput,
    RejectInput,
    ResolveInput,
    Triage,
)
from tenantry.knowledge import search as retrieval
from tenantry.knowledge.embeddings import Embedder
from tenantry.observability import domain as metrics
from tenantry.outbox import effects
from tenantry.outbox import service as outbox
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

SEVERITY_RANK = {s: i for i, s in enumerate(incidents.SEVERITIES)}


def confidence_of(similarity: float | None) -> float:
    """e5 similarities of a right answer sit near 0.9 and of unrelated text near 0.78: a linear
    map of that band to 0..1, calibrated on the labelled set."""
    if similarity is None:
        return 0.0
    return round(min(1.0, max(0.0, (similarity - 0.78) / 0.14)), 3)


def _key(step: str, job: IncidentInput, *more: object) -> str:
    return ":".join([step, job.incident_id, str(job.episode), *(str(m) for m in more)])


class IncidentActivities:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings

    @activity.defn(name="incidents.triage")
    async def triage(self, job: IncidentInput) -> Triage:
        tenant_id, incident_id = uuid.UUID(job.tenant_id), uuid.UUID(job.incident_id)
        async with self.db.tenant(tenant_id) as session:
            done = await effects.recall(session, tenant_id=tenant_id, key=_key("triage", job))
            if done is not None:
                return Triage(**done)
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=incident_id
            )
            tenant = await session.get(Tenant, tenant_id)
            config = (
                await config_service.effective(session, tenant_id=tenant_id, tier=tenant.tier)
            ).config
        question = f"{incident.title}\n\n{incident.description}"
        vector = await self.embedder.query(question)
        searching = time.perf_counter()
        async with self.db.tenant(tenant_id, local_settings=retrieval.VECTOR_SETTINGS) as session:
            hits = await retrieval.search(
                session,
                tenant_id=tenant_id,
                language=config["language"],
                query=question,
                query_vector=vector,
                limit=3,
            )
        metrics.searched(
            tenant, source="triage", seconds=time.perf_counter() - searching, hits=len(hits)
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
            # Another attempt may have finished meanwhile: its result is the result.
            done = await effects.recall(session, tenant_id=tenant_id, key=_key("triage", job))
            if done is not None:
                return Triage(**done)
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
                metrics.triaged(tenant, seconds=(utcnow() - incident.created_at).total_seconds())
                await incidents.add_event(
                    session,
                    incident,
                    actor="system:triage",
                    kind="triaged",
                    data={"confidence": confidence, "how": how, "sources": len(hits)},
                )
            auto = (
                bool(hits)
                and SEVERITY_RANK[incident.severity]
                <= SEVERITY_RANK[thresholds["auto_resolve_max_severity"]]
                and confidence >= thresholds["auto_resolve_min_confidence"]
            )
            result = Triage(
                auto,
                text,
                confidence,
                thresholds["escalation_after_minutes"],
                config["webhooks"]["max_attempts"],
                sourced=bool(hits),
            )
            await effects.remember(
                session,
                tenant_id=tenant_id,
                key=_key("triage", job),
                result=dataclasses.asdict(result),
            )
        return result

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
            if incident.status == "awaiting_approval":  # a retry finds it triaged: nothing new
                incident.status = "triaged"
                await incidents.add_event(
                    session,
                    incident,
                    actor=step.actor,
                    kind="proposal_rejected",
                    data={"reason": step.reason},
                )

    @activity.defn(name="incidents.refuse")
    async def refuse(self, step: RefuseInput) -> None:
        """The workflow could not carry out an action: it is no longer pending, and said why."""
        job, tenant_id = step.job, uuid.UUID(step.job.tenant_id)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=uuid.UUID(job.incident_id)
            )
            key = _key("refuse", job, step.action.id)
            if await effects.recall(session, tenant_id=tenant_id, key=key) is not None:
                return
            if incident.pending_action == step.action.kind:
                incident.pending_action = None
            await incidents.add_event(
                session,
                incident,
                actor="system:workflow",
                kind="action_refused",
                data={"action": step.action.kind, "by": step.action.actor, "reason": step.reason},
            )
            await effects.remember(session, tenant_id=tenant_id, key=key, result={})

    @activity.defn(name="incidents.escalate")
    async def escalate(self, step: EscalateInput) -> Followups:
        """Raise the severity once per ordinal; while the tenant is suspended, do nothing and
        say so (the workflow waits for its resume)."""
        job, tenant_id = step.job, uuid.UUID(step.job.tenant_id)
        key = _key("escalate", job, step.ordinal)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=uuid.UUID(job.incident_id)
            )
            done = await effects.recall(session, tenant_id=tenant_id, key=key)
            if done is not None:
                return Followups(**done)
            if await outbox.pause_if_suspended(
                session, tenant_id=tenant_id, workflow_id=activity.info().workflow_id
            ):
                return Followups(paused=True)
            result = Followups()
            if incident.status in ("triaged", "awaiting_approval"):
                before = incident.severity
                incident.severity = incidents.raised(before)
                await incidents.add_event(
                    session,
                    incident,
                    actor="system:escalation",
                    kind="escalated",
                    data={"from": before, "to": incident.severity, "ordinal": step.ordinal},
                )
                ids = await events.record_event(
                    session,
                    tenant_id=tenant_id,
                    event_type="incident.escalated",
                    data=incidents.payload(incident),
                )
                result = Followups(delivery_ids=[str(i) for i in ids], severity=incident.severity)
                metrics.escalated(await metrics.tenant_named(session, tenant_id))
            await effects.remember(
                session, tenant_id=tenant_id, key=key, result=dataclasses.asdict(result)
            )
        return result

    @activity.defn(name="incidents.resolve")
    async def resolve(self, step: ResolveInput) -> Followups:
        job, tenant_id = step.job, uuid.UUID(step.job.tenant_id)
        key = _key("resolve", job)
        async with self.db.tenant(tenant_id) as session:
            incident = await incidents.get_by_id(
                session, tenant_id=tenant_id, incident_id=uuid.UUID(job.incident_id)
            )
            done = await effects.recall(session, tenant_id=tenant_id, key=key)
            if done is not None:
                return Followups(**done)
            incident.status, incident.resolution, incident.resolved_by = (
                "resolved",
                step.resolution,
                step.actor,
            )
            incident.resolved_at, incident.pending_action = utcnow(), None
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
            document_id = await learn(
                session, incident, how=step.how, max_bytes=self.settings.max_document_bytes
            )
            ids = await events.record_event(
                session,
                tenant_id=tenant_id,
                event_type="incident.resolved",
                data=incidents.payload(incident),
            )
            result = Followups(delivery_ids=[str(i) for i in ids], document_id=document_id)
            metrics.resolved(await metrics.tenant_named(session, tenant_id), how=step.how)
            await effects.remember(
                session, tenant_id=tenant_id, key=key, result=dataclasses.asdict(result)
            )
        return result

    def all(self) -> list:
        return [
            self.triage,
            self.request_approval,
            self.reject,
            self.refuse,
            self.escalate,
            self.resolve,
        ]
