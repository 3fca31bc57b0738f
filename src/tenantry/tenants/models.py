"""The control-plane `tenants` table: outside RLS, reached only through `tenants.service`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="active")
    cell: Mapped[str] = mapped_column(Text)
    task_queue: Mapped[str] = mapped_column(Text)
    cache_prefix: Mapped[str] = mapped_column(Text)
    log_label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    limit_overrides: Mapped[dict[str, int]] = mapped_column(JSONB, default=dict)


class TenantDeletion(Base):
    """The receipt a deletion leaves on the control plane, and the clean-up it still owes
    outside the database (the tenant's workflows in Temporal, its own HNSW index)."""

    __tablename__ = "tenant_deletions"

    # Not `tenant_id`: that column marks the tenant-owned tables a deletion purges.
    tenant: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), primary_key=True)
    slug: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    audit_head_seq: Mapped[int] = mapped_column(BigInteger)
    audit_head_hash: Mapped[str] = mapped_column(Text)
    purged: Mapped[dict[str, int]] = mapped_column(JSONB)
    key_destroyed: Mapped[bool] = mapped_column(Boolean)
    workflows_terminated: Mapped[int] = mapped_column(Integer, default=0)
    index_dropped: Mapped[bool] = mapped_column(Boolean, default=False)
    cleanup_attempts: Mapped[int] = mapped_column(Integer, default=0)
    cleanup_error: Mapped[str | None] = mapped_column(Text)
    cleanup_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cleaned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Cell(Base):
    """A database tenants can be placed in, besides the control plane's own (see `db/cells.py`)."""

    __tablename__ = "cells"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    database: Mapped[str | None] = mapped_column(Text)  # on the control plane's server
    url_env: Mapped[str | None] = mapped_column(Text)  # or the variable holding its URL
    # `pool`: many tenants on the shared workers; `silo`: a tenant's own placement, whose move
    # there gives it dedicated workers (see `ops/moves.py`).
    kind: Mapped[str] = mapped_column(Text, default="pool", server_default="pool")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
