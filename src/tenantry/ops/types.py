"""Inputs of the backup workflow: plain data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackupInput:
    tenant_id: str
    backup_id: str
