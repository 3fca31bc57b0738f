"""Incident payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api_types import Label, LongText, Name, Title, pattern_text, text

Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["open", "triaged", "awaiting_approval", "resolved", "closed"]
Area = text(100)
# INC-1 … INC-999999999: the number must fit the column (int4).
Handle = pattern_text(r"^INC-[0-9]{1,9}$", max_length=13)


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: LongText
    area: Area | None = None
    severity: Severity = "medium"
    assignee: Label | None = None


class ExternalIncidentCreate(IncidentCreate):
    reporter: Name = Field(description="Who reported it in the calling system.")
    external_ref: Label | None = None


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: LongText


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: text(2_000) | None = None


class SourceOut(BaseModel):
    ref: int
    document_id: uuid.UUID
    title: str
    excerpt: str
    similarity: float | None
    past_incident: bool


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    kind: str
    data: dict[str, Any]


class IncidentOut(BaseModel):
    number: str
    id: uuid.UUID
    title: str
    description: str
    area: str | None
    severity: Severity
    reporter: str
    assignee: str | None
    status: Status
    proposal: str | None
    confidence: float | None
    sources: list[dict[str, Any]]
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    knowledge_document_id: uuid.UUID | None
    episode: int = Field(description="1, then one more on each reopening.")
    pending_action: str | None = Field(
        description="An approval or resolution on its way to the workflow."
    )
    created_at: datetime
    updated_at: datetime
    timeline: list[EventOut] | None = None

    @classmethod
    def of(cls, incident, timeline=None) -> IncidentOut:
        return cls(
            number=incident.handle,
            id=incident.id,
            title=incident.title,
            description=incident.description,
            area=incident.area,
            severity=incident.severity,
            reporter=incident.reporter,
            assignee=incident.assignee,
            status=incident.status,
            proposal=incident.proposal,
            confidence=incident.confidence,
            sources=incident.sources,
            resolution=incident.resolution,
            resolved_by=incident.resolved_by,
            resolved_at=incident.resolved_at,
            knowledge_document_id=incident.knowledge_document_id,
            episode=incident.episode,
            pending_action=incident.pending_action,
            created_at=incident.created_at,
            updated_at=incident.updated_at,
            timeline=None if timeline is None else [EventOut.model_validate(e) for e in timeline],
        )
