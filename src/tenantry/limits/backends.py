"""Where counters live: this process's memory, or Redis shared by every API process.

Rates use the `limits` library (the same algorithms on both storages, see `rates`). Concurrency
needs leases that expire when a process dies, which `limits` does not offer: a sorted set per
key on Redis (member: lease id, score: expiry), or a dict in memory. Login attempts are leases
too (see `tenantry.identity.throttle`): taken before the password is checked, given back when it
was right, kept until they expire when it was wrong.

Redis down never answers 500: `RedisHealth` notices the failure (a metric, one log line per
outage) and for a moment stops asking Redis; meanwhile rate limits fail open (see `rates.py`),
and concurrency and login throttling count in this process's memory.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, Protocol

import structlog
from limits.aio.storage import (
    MemoryStorage,
    MovingWindowSupport,
    SlidingWindowCounterSupport,
    Storage,
)
from limits.errors import StorageError
from limits.storage import storage_from_string

from tenantry.observability.metrics import LIMITS_DEGRADED
from tenantry.settings import Settings

log = structlog.get_logger("tenantry.limits")
# A Redis that does not answer within this costs each request at most this much.
REDIS_TIMEOUT_SECONDS = 0.5


class RedisHealth:
    """Whether to ask Redis now: after a failure, not for `retry_seconds`."""

    def __init__(self, *, retry_seconds: float = 2.0) -> None:
        self.retry_seconds = retry_seconds
        self.down_until = 0.0
        self.down = False

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, error: BaseException) -> None:
        self.down_until = time.monotonic() + self.retry_seconds
        if not self.down:
            self.down = True
            log.warning(
                "redis unavailable: rate limits fail open; concurrency and login throttling "
                "count in this process's memory",
                error=type(error).__name__,
            )

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            log.info("redis is back: limits are shared again")


def _redis_uri(url: str) -> str:
    for plain, scheme in (("unix://", "async+redis+unix://"), ("redis://", "async+redis://")):
        if url.startswith(plain):
            return scheme + url[len(plain) :]
    return url


def rate_storage(settings: Settings, health: RedisHealth | None = None) -> Storage:
    if settings.redis_url:
        redis = storage_from_string(
            _redis_uri(settings.redis_url),
            implementation="redispy",
            key_prefix="tenantry-limits",
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        return FallbackStorage(redis, health or RedisHealth())
    return MemoryStorage()


class FallbackStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """Redis while it answers, this process's memory while it does not."""

    STORAGE_SCHEME = None

    def __init__(self, primary: Storage, health: RedisHealth) -> None:
        super().__init__()
        self.primary = primary
        self.fallback = MemoryStorage()
        self.health = health

    @property
    def degraded(self) -> bool:
        return not self.health.available()

    @property
    def base_exceptions(self) -> type[Exception]:
        return StorageError

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.health.available():
            try:
                result = await getattr(self.primary, name)(*args, **kwargs)
            except StorageError as error:
                self.health.failed(error)
            else:
                self.health.succeeded()
                return result
        LIMITS_DEGRADED.labels("memory").inc()
        return await getattr(self.fallback, name)(*args, **kwargs)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return await self._call("incr", key, expiry, amount)

    async def get(self, key: str) -> int:
        return await self._call("get", key)

    async def get_expiry(self, key: str) -> float:
        return await self._call("get_expiry", key)

    async def check(self) -> bool:
        return await self._call("check")

    async def reset(self) -> int | None:
        return await self._call("reset")

    async def clear(self, key: str) -> None:
        return await self._call("clear", key)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return await self._call("acquire_entry", key, limit, expiry, amount)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return await self._call("get_moving_window", key, limit, expiry)

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return await self._call("acquire_sliding_window_entry", key, limit, expiry, amount)

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return await self._call("get_sliding_window", key, expiry)

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        return await self._call("clear_sliding_window", key, expiry)


class Concurrency(Protocol):
    """Leases counted per key: at most `limit` held at once; each expires after `seconds`
    (default: the backend's request lease) unless released first."""

    async def acquire(
        self, key: str, limit: int, *, seconds: float | None = None
    ) -> str | None: ...
    async def release(self, key: str, lease: str) -> None: ...
    async def in_use(self, key: str) -> int: ...
    async def next_expiry(self, key: str) -> float | None: ...
    async def last_expiry(self, key: str) -> float | None: ...
    async def clear(self, key: str) -> None: ...


class MemoryConcurrency:
    """In this process; a request's lease lasts until released (the process holds them all)."""

    def __init__(self) -> None:
        self._held: dict[str, dict[str, float]] = {}

    def _live(self, key: str) -> dict[str, float]:
        held = self._held.setdefault(key, {})
        now = time.time()
        for lease in [lease for lease, expiry in held.items() if expiry <= now]:
            del held[lease]
        return held

    async def acquire(self, key: str, limit: int, *, seconds: float | None = None) -> str | None:
        # No await between the count and the take: atomic on the event loop.
        held = self._live(key)
        if len(held) >= limit:
            return None
        lease = uuid.uuid4().hex
        held[lease] = time.time() + seconds if seconds is not None else math.inf
        return lease

    async def release(self, key: str, lease: str) -> None:
        self._held.get(key, {}).pop(lease, None)

    async def in_use(self, key: str) -> int:
        return len(self._live(key))

    async def next_expiry(self, key: str) -> float | None:
        held = self._live(key)
        return min(held.values()) if held else None

    async def last_expiry(self, key: str) -> float | None:
        held = self._live(key)
        return max(held.values()) if held else None

    async def clear(self, key: str) -> None:
        self._held.pop(key, None)


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

        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.lease_seconds = lease_seconds
        self._acquire = self.client.register_script(ACQUIRE)

    async def acquire(self, key: str, limit: int, *, seconds: float | None = None) -> str | None:
        now_ms = int(time.time() * 1000)
        lease_ms = int((seconds if seconds is not None else self.lease_seconds) * 1000)
        lease = uuid.uuid4().hex
        taken = await self._acquire(
            keys=[f"tenantry-conc:{key}"],
            args=[now_ms, now_ms + lease_ms, limit, lease, lease_ms],
        )
        return lease if taken else None

    async def release(self, key: str, lease: str) -> None:
        await self.client.zrem(f"tenantry-conc:{key}", lease)

    async def in_use(self, key: str) -> int:
        now_ms = int(time.time() * 1000)
        await self.client.zremrangebyscore(f"tenantry-conc:{key}", "-inf", now_ms)
        return await self.client.zcard(f"tenantry-conc:{key}")

    async def next_expiry(self, key: str) -> float | None:
        await self.client.zremrangebyscore(f"tenantry-conc:{key}", "-inf", int(time.time() * 1000))
        oldest = await self.client.zrange(f"tenantry-conc:{key}", 0, 0, withscores=True)
        return oldest[0][1] / 1000 if oldest else None

    async def last_expiry(self, key: str) -> float | None:
        newest = await self.client.zrange(f"tenantry-conc:{key}", -1, -1, withscores=True)
        return newest[0][1] / 1000 if newest else None

    async def clear(self, key: str) -> None:
        await self.client.delete(f"tenantry-conc:{key}")

    async def close(self) -> None:
        await self.client.aclose()


class FallbackConcurrency:
    """Leases on Redis while it answers; in this process's memory while it does not.

    A lease taken on Redis whose release fails (Redis went away meanwhile) expires on its own.
    """

    MEMORY = "mem:"

    def __init__(self, primary: RedisConcurrency, health: RedisHealth) -> None:
        self.primary = primary
        self.fallback = MemoryConcurrency()
        self.health = health

    async def acquire(self, key: str, limit: int, *, seconds: float | None = None) -> str | None:
        if self.health.available():
            try:
                lease = await self.primary.acquire(key, limit, seconds=seconds)
            except REDIS_ERRORS as error:
                self.health.failed(error)
            else:
                self.health.succeeded()
                return lease
        LIMITS_DEGRADED.labels("concurrency").inc()
        lease = await self.fallback.acquire(key, limit, seconds=seconds)
        return self.MEMORY + lease if lease else None

    async def release(self, key: str, lease: str) -> None:
        if lease.startswith(self.MEMORY):
            await self.fallback.release(key, lease.removeprefix(self.MEMORY))
            return
        try:
            await self.primary.release(key, lease)
        except REDIS_ERRORS as error:
            self.health.failed(error)

    async def in_use(self, key: str) -> int:
        held = await self.fallback.in_use(key)
        if self.health.available():
            try:
                held += await self.primary.in_use(key)
            except REDIS_ERRORS as error:
                self.health.failed(error)
        return held

    async def next_expiry(self, key: str) -> float | None:
        expiries = [await self.fallback.next_expiry(key)]
        if self.health.available():
            try:
                expiries.append(await self.primary.next_expiry(key))
            except REDIS_ERRORS as error:
                self.health.failed(error)
        known = [e for e in expiries if e is not None]
        return min(known) if known else None

    async def last_expiry(self, key: str) -> float | None:
        expiries = [await self.fallback.last_expiry(key)]
        if self.health.available():
            try:
                expiries.append(await self.primary.last_expiry(key))
            except REDIS_ERRORS as error:
                self.health.failed(error)
        known = [e for e in expiries if e is not None]
        return max(known) if known else None

    async def clear(self, key: str) -> None:
        await self.fallback.clear(key)
        if self.health.available():
            try:
                await self.primary.clear(key)
            except REDIS_ERRORS as error:
                self.health.failed(error)

    async def close(self) -> None:
        await self.primary.close()


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError)


REDIS_ERRORS = _redis_errors()


def concurrency_backend(settings: Settings, health: RedisHealth | None = None) -> Concurrency:
    if not settings.redis_url:
        return MemoryConcurrency()
    return FallbackConcurrency(RedisConcurrency(settings.redis_url), health or RedisHealth())
