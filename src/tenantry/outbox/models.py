"""Outbox messages, the slots of `workflows_in_flight`, paused workflows and activity effects:
all tenant-owned, under forced RLS like every other tenant table. And `schedule_syncs`, the
control plane's one outbox: a tenant's backup schedules owed a sync with Temporal."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned, utcnow

TS = DateTime(timezone=True)


class OutboxMessage(TenantOwned, Base):
    """One thing to tell Temporal: start a workflow, signal it, or cancel it."""

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Delivery order: a workflow's messages go out in the order they were written.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    kind: Mapped[str] = mapped_column(Text)  # start, signal, cancel
    workflow_id: Mapped[str] = mapped_column(Text)
    workflow_type: Mapped[str | None] = mapped_column(Text)
    signal: Mapped[str | None] = mapped_column(Text)
    arg: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Starts that take one of the tenant's `workflows_in_flight` slots.
    counts_in_flight: Mapped[bool] = mapped_column(Boolean, default=False)
    reuse_policy: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, server_default=text("clock_timestamp()"))
    available_at: Mapped[datetime] = mapped_column(TS, server_default=text("clock_timestamp()"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    waiting_for: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(TS)
    outcome: Mapped[str | None] = mapped_column(Text)


class WorkflowSlot(TenantOwned, Base):
    """A workflow holding one of its tenant's `workflows_in_flight`, until it ends."""

    __tablename__ = "workflow_slots"

    workflow_id: Mapped[str] = mapped_column(Text, primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class PausedWorkflow(TenantOwned, Base):
    """A workflow waiting for its suspended tenant to be resumed (then it gets a `resume` signal)."""

    __tablename__ = "paused_workflows"

    workflow_id: Mapped[str] = mapped_column(Text, primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class ActivityEffect(TenantOwned, Base):
    """What an activity did, under its key: a retry after its commit returns this, doing nothing."""

    __tablename__ = "activity_effects"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)


class ScheduleSync(Base):
    """A tenant whose backup schedules are owed a sync with Temporal, from the commit that wrote
    it (created, tier changed, suspended, resumed, deleted). Control plane, named `tenant`: a
    deletion's purge must not take the sync that removes the deleted tenant's schedules."""

    __tablename__ = "schedule_syncs"

    tenant: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(TS, server_default=text("clock_timestamp()"))
    due_at: Mapped[datetime] = mapped_column(TS, server_default=text("clock_timestamp()"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
