"""Audit payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class DeletionReceiptOut(BaseModel):
    """What a deleted tenant's chain ended with, and what its deletion removed."""

    model_config = ConfigDict(from_attributes=True)

    slug: str
    actor: str
    deleted_at: datetime
    audit_head_seq: int
    audit_head_hash: str
    purged: dict[str, int]
    key_destroyed: bool
    workflows_terminated: int
    index_dropped: bool
    cleaned_at: datetime | None


class ChainOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    anchor_seq: int | None = Field(
        default=None, description="The newest signed anchor the chain was checked against."
    )
    anchor_signed_at: datetime | None = None
    deletion: DeletionReceiptOut | None = None

    @classmethod
    def deleted(cls, receipt) -> ChainOut:
        """A deleted tenant: its events were purged on purpose; the receipt keeps their head."""
        return cls(
            ok=True,
            events=receipt.audit_head_seq,
            first_bad_seq=None,
            reason=None,
            deletion=DeletionReceiptOut.model_validate(receipt),
        )
