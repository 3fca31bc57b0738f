"""Audit payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    target: str
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, events, *, total: int, limit: int, offset: int) -> AuditPage:
        items = [AuditEventOut.model_validate(e) for e in events]
        return cls(items=items, total=total, limit=limit, offset=offset)


class ChainOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
