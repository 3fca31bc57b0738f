"""Per-tenant rate limits and the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers).

A quota of up to `EXACT_UP_TO` a minute uses the `limits` library's moving window: a log of the
last admissions, exact, so no span of 60 seconds ever admits more than the quota. Its cost is one
timestamp per admission still in the window, per tenant and policy (in process memory, or a Redis
list); 10,000 bounds that at about 1.5 MB a key in memory and 200 KB in Redis, and is the whole
platform's design rate (seed 000: 10,000 requests a minute), so every tier's own limits are exact.
Above it, an operator's override for one very large tenant uses the sliding-window counter (two
counters; its weighted estimate can admit up to twice the quota in one window-long span when a
whole window's requests arrive at its very end).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from tenantry.observability.metrics import LIMITS_DEGRADED

EXACT_UP_TO = 10_000


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
        self.exact = MovingWindowRateLimiter(storage)
        self.approximate = SlidingWindowCounterRateLimiter(storage)

    def _limiter(self, per_minute: int) -> RateLimiter:
        return self.exact if per_minute <= EXACT_UP_TO else self.approximate

    def _open(self, policy: str, per_minute: int) -> RateDecision | None:
        if not getattr(self.storage, "degraded", False):
            return None
        LIMITS_DEGRADED.labels("rate").inc()
        return RateDecision(policy, True, per_minute, 60, per_minute, 0, known=False)

    async def peek(self, *, policy: str, tenant_key: str, per_minute: int) -> RateDecision:
        """The window as it stands, without counting this request."""
        if opened := self._open(policy, per_minute):
            return opened
        limiter, item = self._limiter(per_minute), RateLimitItemPerMinute(per_minute)
        allowed = await limiter.test(item, policy, tenant_key)
        return await self._decision(limiter, item, policy, tenant_key, allowed)

    async def hit(
        self, *, policy: str, tenant_key: str, per_minute: int, cost: int = 1
    ) -> RateDecision:
        if opened := self._open(policy, per_minute):
            return opened
        limiter, item = self._limiter(per_minute), RateLimitItemPerMinute(per_minute)
        allowed = await limiter.hit(item, policy, tenant_key, cost=cost)
        return await self._decision(limiter, item, policy, tenant_key, allowed)

    @staticmethod
    async def _decision(
        limiter: RateLimiter, item, policy: str, tenant_key: str, allowed: bool
    ) -> RateDecision:
        stats = await limiter.get_window_stats(item, policy, tenant_key)
        # Refused means none left now, even in the instant an admission leaves the window (the
        # storages disagree on whether an entry exactly one window old still counts).
        remaining = max(0, stats.remaining) if allowed else 0
        # `t`: when one more request will be admitted (the oldest admission leaves the window);
        # a refusal always says at least a second.
        reset = max(0 if remaining else 1, math.ceil(stats.reset_time - time.time()))
        return RateDecision(policy, allowed, item.amount, 60, remaining, reset)
