"""Detailed health reports the Redis that limits are shared through, behind its fallback too."""

from __future__ import annotations

from types import SimpleNamespace

from tenantry.limits.backends import concurrency_backend
from tenantry.observability import components


async def test_redis_behind_the_fallback_is_reported_configured_and_pinged(settings, redis_url):
    shared = concurrency_backend(settings.model_copy(update={"redis_url": redis_url}))
    assert await components.redis(SimpleNamespace(concurrency=shared)) == {
        "status": "ok",
        "configured": True,
    }
    alone = concurrency_backend(settings.model_copy(update={"redis_url": None}))
    assert (await components.redis(SimpleNamespace(concurrency=alone)))["configured"] is False
