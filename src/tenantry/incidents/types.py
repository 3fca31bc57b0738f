"""Inputs and results of the incident workflow and its activities (sandbox-safe plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IncidentInput:
    tenant_id: str
    tenant_slug: str
    incident_id: str
    number: int


@dataclass(frozen=True)
class Triage:
    auto_resolve: bool
    proposal: str
    confidence: float
    escalate_after_minutes: float
    webhook_attempts: int


@dataclass(frozen=True)
class Action:
    kind: str  # approve, reject, resolve
    actor: str
    text: str | None = None


@dataclass(frozen=True)
class ResolveInput:
    job: IncidentInput
    actor: str
    resolution: str
    how: str


@dataclass(frozen=True)
class Followups:
    """What to start after a step: deliveries to send, a document to ingest."""

    delivery_ids: list[str] = field(default_factory=list)
    document_id: str | None = None
    severity: str | None = None


@dataclass(frozen=True)
class RejectInput:
    job: IncidentInput
    actor: str
    reason: str | None
