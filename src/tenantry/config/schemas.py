"""Configuration payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api_types import VersionNumber


class EffectiveOut(BaseModel):
    config: dict[str, Any]
    sources: dict[str, str] = Field(description="Each leaf path: platform, tier or tenant.")
    version: int
    tier_version: int


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    document: dict[str, Any]
    diff: dict[str, Any]
    author: str
    created_at: datetime


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionNumber


class TierTemplateOut(BaseModel):
    tier: str
    version: int
    document: dict[str, Any]
    limits: dict[str, int]
    fairness_weight: float
    db_connection_share: float
    shed_above: float
