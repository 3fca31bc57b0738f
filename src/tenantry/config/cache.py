"""Each API process's cache of tenant policies, keyed `{prefix}:{tenant}:{id}`.

Entries are dropped by prefix when PostgreSQL notifies a change (see `listener`); a time limit is
only a safety net for a notification lost while the listener reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from tenantry.observability.metrics import CONFIG_CACHE

T = TypeVar("T")


def cache_key(tenant_cache_prefix: str, identifier: str) -> str:
    """`tenant_cache_prefix` is the namespace's `{prefix}:{tenant}:`."""
    return f"{tenant_cache_prefix}{identifier}"


class PrefixCache(Generic[T]):
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, T]] = {}
        self.generation = 0  # bumped on every invalidation, so a load that raced one is not kept

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            CONFIG_CACHE.labels("hit").inc()
            return entry[1]
        CONFIG_CACHE.labels("miss").inc()
        generation = self.generation
        value = await load()
        self.put(key, value, generation=generation)
        return value

    def put(self, key: str, value: T, *, generation: int) -> None:
        """Keep `value` unless an invalidation happened since `generation` was read."""
        if generation == self.generation:
            self._entries[key] = (time.monotonic() + self.ttl, value)

    def invalidate(self, prefix: str) -> None:
        """Drop every key starting with `prefix`; `*` drops everything."""
        self.generation += 1
        if prefix == "*":
            self._entries.clear()
            return
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

    def keys(self) -> list[str]:
        return list(self._entries)

    def peek(self, key: str) -> Any:
        """The live entry under `key`, or None; never loads."""
        entry = self._entries.get(key)
        return entry[1] if entry and entry[0] > time.monotonic() else None
