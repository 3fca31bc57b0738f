"""Per-tenant rate limits and the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


@dataclass(frozen=True)
class RateDecision:
    policy: str
    allowed: bool
    quota: int
    window: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.quota};w={self.window}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_seconds}',
        }


class RateLimits:
    def __init__(self, storage: Storage) -> None:
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def peek(self, *, policy: str, tenant_key: str, per_minute: int) -> RateDecision:
        """The window as it stands, without counting this request."""
        item = RateLimitItemPerMinute(per_minute)
        allowed = await self.limiter.test(item, policy, tenant_key)
        stats = await self.limiter.get_window_stats(item, policy, tenant_key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(policy, allowed, per_minute, 60, max(0, stats.remaining), reset)

    async def hit(
        self, *, policy: str, tenant_key: str, per_minute: int, cost: int = 1
    ) -> RateDecision:
        item = RateLimitItemPerMinute(per_minute)
        allowed = await self.limiter.hit(item, policy, tenant_key, cost=cost)
        stats = await self.limiter.get_window_stats(item, policy, tenant_key)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return RateDecision(policy, allowed, per_minute, 60, max(0, stats.remaining), reset)
