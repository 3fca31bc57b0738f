"""Where counters live: this process's memory, or Redis shared by every API process.

Rates use the `limits` library (sliding-window counters, the same algorithm on both storages).
Concurrency needs leases that expire when a process dies, which `limits` does not offer: a sorted
set per tenant on Redis (member: lease id, score: expiry), or a dict in memory.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol

from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string

from tenantry.settings import Settings


def rate_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        uri = settings.redis_url.replace("redis://", "async+redis://", 1)
        return storage_from_string(uri, implementation="redispy", key_prefix="tenantry-limits")
    return MemoryStorage()


class Concurrency(Protocol):
    async def acquire(self, key: str, limit: int) -> str | None: ...
    async def release(self, key: str, lease: str) -> None: ...
    async def in_use(self, key: str) -> int: ...


class MemoryConcurrency:
    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}

    async def acquire(self, key: str, limit: int) -> str | None:
        held = self._held.setdefault(key, set())
        if len(held) >= limit:
            return None
        lease = uuid.uuid4().hex
        held.add(lease)
        return lease

    async def release(self, key: str, lease: str) -> None:
        self._held.get(key, set()).discard(lease)

    async def in_use(self, key: str) -> int:
        return len(self._held.get(key, ()))


# Atomic on the server: drop expired leases, then take one if there is room.
ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisConcurrency:
    def __init__(self, url: str, *, lease_seconds: float = 120) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.lease_ms = int(lease_seconds * 1000)
        self._acquire = self.client.register_script(ACQUIRE)

    async def acquire(self, key: str, limit: int) -> str | None:
        now_ms = int(time.time() * 1000)
        lease = uuid.uuid4().hex
        taken = await self._acquire(
            keys=[f"tenantry-conc:{key}"],
            args=[now_ms, now_ms + self.lease_ms, limit, lease, self.lease_ms],
        )
        return lease if taken else None

    async def release(self, key: str, lease: str) -> None:
        await self.client.zrem(f"tenantry-conc:{key}", lease)

    async def in_use(self, key: str) -> int:
        now_ms = int(time.time() * 1000)
        await self.client.zremrangebyscore(f"tenantry-conc:{key}", "-inf", now_ms)
        return await self.client.zcard(f"tenantry-conc:{key}")

    async def close(self) -> None:
        await self.client.aclose()


def concurrency_backend(settings: Settings) -> Concurrency:
    return RedisConcurrency(settings.redis_url) if settings.redis_url else MemoryConcurrency()
