"""Inputs of the ingestion workflow and its activities: plain data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestInput:
    tenant_id: str
    tenant_slug: str
    document_id: str


@dataclass(frozen=True)
class FailInput:
    tenant_id: str
    document_id: str
    reason: str
