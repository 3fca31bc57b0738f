"""Failed-login throttling: N failures a minute per (tenant, email) and per client address."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from tenantry.errors import AppError


class TooManyAttempts(AppError):
    status, code, title = 429, "too-many-login-attempts", "Too many failed logins"


class LoginThrottle:
    def __init__(self, per_minute: int, storage: Storage | None = None) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    @staticmethod
    def keys(tenant: str, email: str, address: str) -> list[tuple[str, ...]]:
        return [("login", "account", tenant, email.lower()), ("login", "address", address)]

    async def check(self, keys: list[tuple[str, ...]]) -> None:
        """Refuse before the password is even checked, once any key has used its failures."""
        for key in keys:
            if not await self.limiter.test(self.item, *key):
                stats = await self.limiter.get_window_stats(self.item, *key)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise TooManyAttempts(
                    f"Too many failed logins; try again in {retry} seconds.",
                    headers={"Retry-After": str(retry)},
                )

    async def failed(self, keys: list[tuple[str, ...]]) -> None:
        for key in keys:
            await self.limiter.hit(self.item, *key)
