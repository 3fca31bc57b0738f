"""Idempotency-Key records: a tenant's under its RLS policy; an operator's on the control plane."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned

TS = DateTime(timezone=True)


class _Record:
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text)  # method, path, query and body, hashed
    status: Mapped[str] = mapped_column(Text)  # in_flight, done
    locked_until: Mapped[datetime] = mapped_column(TS)
    response: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed: it may hold a secret
    created_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)


class IdempotencyKey(TenantOwned, _Record, Base):
    __tablename__ = "idempotency_keys"


class OperatorIdempotencyKey(_Record, Base):
    __tablename__ = "operator_idempotency_keys"

    operator: Mapped[str] = mapped_column(Text, primary_key=True)
