"""Inputs of the backup and restore workflows: plain data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackupInput:
    """A recorded backup to take; or, from a schedule, no `backup_id` and its `cadence`: the
    workflow records the backup first."""

    tenant_id: str
    backup_id: str | None = None
    cadence: str | None = None


@dataclass(frozen=True)
class ScheduledBackup:
    tenant_id: str
    backup_id: str
    cadence: str
    schedule: str  # the workflow id of the schedule's run, the record's `requested_by`


@dataclass(frozen=True)
class RestoreInput:
    tenant_id: str
    restore_id: str


@dataclass(frozen=True)
class MoveInput:
    tenant_id: str
    move_id: str
