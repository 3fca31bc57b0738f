"""Backup and restore payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.ops.verify import Report
from tenantry.tenants.schemas import Slug


class BackupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    kind: Literal["manual", "scheduled", "safety"]
    cadence: str | None
    status: Literal["queued", "running", "done", "failed", "pruned"]
    archive: str = Field(description="The archive's key in the backup store.")
    progress: dict[str, int] = Field(description="Rows exported so far, per table.")
    rows: int
    bytes: int
    manifest_sha256: str | None
    revision: str | None
    error: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class VerifyOut(BaseModel):
    archive: str
    ok: bool
    problems: list[str]
    rows: dict[str, int]
    manifest_sha256: str | None
    audit_events: int

    @classmethod
    def of(cls, report: Report) -> VerifyOut:
        return cls.model_validate(report, from_attributes=True)


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup_id: uuid.UUID = Field(description="A finished backup of this tenant.")
    as_slug: Slug | None = Field(
        default=None, description="Clone into a new tenant with this slug instead of replacing."
    )


class RestoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    mode: Literal["replace", "clone"]
    archive: str
    source_slug: str | None
    status: str
    progress: dict[str, int]
    safety_backup: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None
