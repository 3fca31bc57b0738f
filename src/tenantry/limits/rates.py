"""Per-tenant rate limits and the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from tenantry.observability.metrics import LIMITS_DEGRADED


@dataclass(frozen=True)
class RateDecision:
    policy: str
    allowed: bool
    quota: int
    window: int
    remaining: int
    reset_seconds: int
    known: bool = True  # False: decided without the shared counters (Redis down)

    def headers(self) -> dict[str, str]:
        if not self.known:  # nothing true to say
            return {}
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.quota};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_seconds}',
        }


class RateLimits:
    """Rate limits fail open while the shared storage is down: a metric and a log line (in
    `backends.RedisHealth`) say so, and the request is served without RateLimit headers."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    def _open(self, policy: str, per_minute: int) -> RateDecision | None:
        if not getattr(self.storage, "degraded", False):
            return None
        LIMITS_DEGRADED.labels("rate").inc()
        return RateDecision(policy, True, per_minute, 60, per_minute, 0, known=False)

    async def peek(self, *, policy: str, tenant_key: str, per_minute: int) -> RateDecision:
        """The window as it stands, without counting this request."""
        if opened := self._open(policy, per_minute):
            return opened
        item = RateLimitItemPerMinute(per_minute)
        allowed = await self.limiter.test(item, policy, tenant_key)
        stats = await self.limiter.get_window_stats(item, policy, tenant_key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(policy, allowed, per_minute, 60, max(0, stats.remaining), reset)

    async def hit(
        self, *, policy: str, tenant_key: str, per_minute: int, cost: int = 1
    ) -> RateDecision:
        if opened := self._open(policy, per_minute):
            return opened
        item = RateLimitItemPerMinute(per_minute)
        allowed = await self.limiter.hit(item, policy, tenant_key, cost=cost)
        stats = await self.limiter.get_window_stats(item, policy, tenant_key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(policy, allowed, per_minute, 60, max(0, stats.remaining), reset)
