"""Limits and usage payloads."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from tenantry.tenants.tiers import Limits


class TenantLimitsOut(BaseModel):
    tenant: str
    tier: str
    tier_limits: Limits
    overrides: dict[str, int]
    effective: Limits


class UsageDay(BaseModel):
    day: date
    metrics: dict[str, int]


class UsageOut(BaseModel):
    tenant: str
    tier: str
    days: list[UsageDay]
    current: dict[str, int]
    limits: Limits


class UsageRow(BaseModel):
    tenant: str
    day: date
    metric: str
    value: int
