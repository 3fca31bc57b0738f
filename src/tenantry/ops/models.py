"""Control-plane records of backups and restores (clones included).

They name their tenant `tenant`, not `tenant_id`: that column marks the tenant-owned tables a
deletion purges and a backup exports, and these records must outlive both.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, utcnow

TS = DateTime(timezone=True)


class Backup(Base):
    __tablename__ = "backups"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"))
    slug: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # manual, scheduled, safety
    cadence: Mapped[str | None] = mapped_column(Text)  # the schedule that took it
    status: Mapped[str] = mapped_column(Text, default="queued")
    archive: Mapped[str] = mapped_column(Text)  # its key in the backup store
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    manifest_sha256: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(TS)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    pruned_at: Mapped[datetime | None] = mapped_column(TS)


class Restore(Base):
    """A restore into a tenant (`replace`) or a clone into a new one (`clone`).

    `tenant` is the tenant restored, or for a clone asked through the API the tenant whose
    backup it copies (the record stays with it; `slug` names the new tenant)."""

    __tablename__ = "restores"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"))
    slug: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(Text)
    archive: Mapped[str] = mapped_column(Text)
    source_slug: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="queued")
    stage: Mapped[str] = mapped_column(Text, default="queued")
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    safety_backup: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("backups.id"))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
    # Asked through the API: the backup it restores, and a clone's name for its new tenant.
    backup: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("backups.id"))
    clone_name: Mapped[str | None] = mapped_column(Text)


class TenantMove(Base):
    """A move of one tenant from a cell to another: its stage, rows copied and write hold."""

    __tablename__ = "tenant_moves"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"))
    slug: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="queued")  # queued, running, done, failed
    stage: Mapped[str] = mapped_column(Text, default="queued")
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    copy_ms: Mapped[int | None] = mapped_column(Integer)
    hold_ms: Mapped[int | None] = mapped_column(Integer)
    # What the move set the tenant's `features.dedicated_workers` to (its target's kind).
    dedicated_workers: Mapped[bool | None] = mapped_column(Boolean)
    # Whether the operator asked for the tenant's own Temporal namespace, and what the move set
    # `features.own_namespace` to (null until the tenant is switched).
    namespace_asked: Mapped[bool] = mapped_column(Boolean, default=False)
    own_namespace: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TS)
