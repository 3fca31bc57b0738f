"""Inputs and results of the incident workflow and its activities (sandbox-safe plain data)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IncidentInput:
    tenant_id: str
    tenant_slug: str
    incident_id: str
    number: int
    episode: int = 1  # one workflow run per episode: a reopened incident starts the next


@dataclass(frozen=True)
class Triage:
    auto_resolve: bool
    proposal: str
    confidence: float
    escalate_after_minutes: float
    webhook_attempts: int
    sourced: bool = True  # False: no source covers it, so the proposal cannot be approved


@dataclass(frozen=True)
class Action:
    kind: str  # approve, reject, resolve
    actor: str
    text: str | None = None
    id: str | None = None  # the outbox message that carried it: a redelivery is recognised


@dataclass(frozen=True)
class ResolveInput:
    job: IncidentInput
    actor: str
    resolution: str
    how: str


@dataclass(frozen=True)
class EscalateInput:
    job: IncidentInput
    ordinal: int  # the n-th escalation of this episode: the key that makes a retry a no-op


@dataclass(frozen=True)
class Followups:
    """What a step set going (deliveries, a document to ingest; started through the outbox)."""

    delivery_ids: list[str] = field(default_factory=list)
    document_id: str | None = None
    severity: str | None = None
    paused: bool = False  # the tenant is suspended: nothing was done, wait for `resume`


@dataclass(frozen=True)
class RejectInput:
    job: IncidentInput
    actor: str
    reason: str | None


@dataclass(frozen=True)
class RefuseInput:
    """An action the workflow cannot honour in its state: noted, and no longer pending."""

    job: IncidentInput
    action: Action
    reason: str
