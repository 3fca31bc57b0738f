"""Backup and restore payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api_types import Flag, Name, text
from tenantry.ops.verify import Report
from tenantry.tenants.schemas import Slug

CellName = text(40, min_length=1)


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


class CloneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup_id: uuid.UUID = Field(description="A finished backup of this tenant.")
    slug: Slug = Field(description="The new tenant's slug (not taken by any tenant).")
    name: Name | None = Field(
        default=None, description="The new tenant's name (default: the source's)."
    )


class RestoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: uuid.UUID
    slug: str = Field(description="The tenant restored, or a clone's new tenant.")
    mode: Literal["replace", "clone"]
    archive: str
    backup_id: uuid.UUID | None = Field(
        default=None, validation_alias="backup", description="The backup it was asked from."
    )
    source_slug: str | None
    status: Literal["queued", "running", "done", "failed"]
    stage: str = Field(
        description="queued, fetching, verifying, safety-backup, swapping or copying, done"
        " (retrying between attempts)."
    )
    progress: dict[str, int] = Field(description="Rows put back so far, per table.")
    safety_backup: uuid.UUID | None
    error: str | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cell: CellName = Field(description="The cell to move the tenant to.")
    namespace: Flag = Field(
        default=False,
        description="Into a silo cell only: also give the tenant its own Temporal namespace "
        "(`tenant-{slug}`; each costs the Temporal server memory and CPU, so a few tenants).",
    )


class MoveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    source: str = Field(description="The cell the tenant was in.")
    target: str = Field(description="The cell it moves to.")
    status: Literal["queued", "running", "done", "failed"]
    stage: Literal["queued", "copying", "holding", "purging", "done"]
    progress: dict[str, int] = Field(description="Rows copied so far, per table.")
    rows: int
    copy_ms: int | None = Field(description="How long the copy took, while the tenant served.")
    hold_ms: int | None = Field(description="How long the tenant's writes were held.")
    dedicated_workers: bool | None = Field(
        default=None,
        description="What the move set the tenant's features.dedicated_workers to: on for a "
        "silo cell, off for a pool one (null until the tenant is switched).",
    )
    namespace_asked: bool = Field(
        default=False,
        description="Whether the move was asked to give the tenant its own namespace.",
    )
    own_namespace: bool | None = Field(
        default=None,
        description="What the move set the tenant's features.own_namespace to: on when asked, "
        "off for a pool cell, else as it was (null until the tenant is switched).",
    )
    error: str | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
