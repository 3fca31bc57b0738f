"""Incidents, numbered per tenant (INC-1, INC-2, …), with a timeline of events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, ForeignKeyConstraint, Integer, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned, utcnow

TS = DateTime(timezone=True)


class IncidentCounter(TenantOwned, Base):
    __tablename__ = "incident_counters"

    last_number: Mapped[int] = mapped_column(Integer)


class Incident(TenantOwned, Base):
    __tablename__ = "incidents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    area: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    reporter: Mapped[str] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="open")
    proposal: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(TS)
    knowledge_document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Each reopening starts a new episode, with a workflow run of its own.
    episode: Mapped[int] = mapped_column(Integer, default=1)
    # An approval or resolution sent to the workflow and not yet carried out.
    pending_action: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)

    @property
    def handle(self) -> str:
        return f"INC-{self.number}"


class IncidentEvent(TenantOwned, Base):
    __tablename__ = "incident_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "incident_id"],
            ["incidents.tenant_id", "incidents.id"],
            ondelete="CASCADE",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    actor: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
