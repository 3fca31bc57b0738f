"""One tier template drives every layer: API limits, quotas, Temporal fairness, database share and
load-shedding order. `standard` means the same thing to the rate limiter, the worker and the pool.

docs/limits.md shows this table; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from tenantry.api_types import Count, Positive


class Limits(BaseModel):
    """A tenant's limits: rates per minute, concurrency, daily volume, and counts (quotas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int = Field(ge=1)
    concurrent_requests: int = Field(ge=1)
    searches_per_minute: int = Field(ge=1)
    ingestion_bytes_per_day: int = Field(ge=0)
    documents: int = Field(ge=0)
    users: int = Field(ge=1)
    api_keys: int = Field(ge=0)
    workflows_in_flight: int = Field(ge=1)


class LimitsPatch(BaseModel):
    """An operator's override: a value sets it, null returns it to the tier's."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: Positive | None = None
    concurrent_requests: Positive | None = None
    searches_per_minute: Positive | None = None
    ingestion_bytes_per_day: Count | None = None
    documents: Count | None = None
    users: Positive | None = None
    api_keys: Count | None = None
    workflows_in_flight: Positive | None = None


@dataclass(frozen=True)
class TierTemplate:
    name: str
    limits: Limits
    fairness_weight: float  # Temporal fairness weight of the tenant's tasks
    db_connection_share: float  # most of one API process's pool one tenant may hold
    shed_above: float  # load (in-flight / capacity) past which this tier is refused first


TIERS: dict[str, TierTemplate] = {
    "free": TierTemplate(
        "free",
        Limits(
            requests_per_minute=120,
            concurrent_requests=4,
            searches_per_minute=30,
            ingestion_bytes_per_day=50_000_000,
            documents=500,
            users=5,
            api_keys=2,
            workflows_in_flight=2,
        ),
        fairness_weight=1.0,
        db_connection_share=0.2,
        shed_above=0.7,
    ),
    "standard": TierTemplate(
        "standard",
        Limits(
            requests_per_minute=600,
            concurrent_requests=16,
            searches_per_minute=120,
            ingestion_bytes_per_day=500_000_000,
            documents=10_000,
            users=50,
            api_keys=10,
            workflows_in_flight=10,
        ),
        fairness_weight=3.0,
        db_connection_share=0.4,
        shed_above=0.85,
    ),
    "enterprise": TierTemplate(
        "enterprise",
        Limits(
            requests_per_minute=3_000,
            concurrent_requests=64,
            searches_per_minute=600,
            ingestion_bytes_per_day=5_000_000_000,
            documents=200_000,
            users=1_000,
            api_keys=100,
            workflows_in_flight=50,
        ),
        fairness_weight=10.0,
        db_connection_share=0.6,
        shed_above=1.0,
    ),
}


def effective_limits(tier: str, overrides: dict | None) -> Limits:
    base = TIERS[tier].limits.model_dump()
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return Limits(**base)
