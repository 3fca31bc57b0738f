"""Each tier's service-level objectives, over a rolling 30 days.

`availability`: the share of a tenant's requests answered without a 5xx. `latency`: the share
answered within `latency_seconds`, i.e. a p95 objective when it is 0.95. The latency thresholds
are bucket bounds of the request-duration histogram, so Prometheus reads them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.tenants.tiers import TIERS


@dataclass(frozen=True)
class Objective:
    availability: float
    latency: float
    latency_seconds: float

    @property
    def error_budget(self) -> float:
        return 1 - self.availability


OBJECTIVES: dict[str, Objective] = {
    "free": Objective(availability=0.99, latency=0.95, latency_seconds=1.0),
    "standard": Objective(availability=0.995, latency=0.95, latency_seconds=0.5),
    "enterprise": Objective(availability=0.999, latency=0.95, latency_seconds=0.2),
}
assert set(OBJECTIVES) == set(TIERS), "every tier has objectives"
