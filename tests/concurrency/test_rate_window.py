"""Rate limits never admit more than the quota in any window-long span.

A fake clock drives the limits storage (in memory and in a real Redis), so the test walks through
two minutes of requests in no time and checks every window-long span. Before, the sliding-window
counter admitted 6 in 49 s with a quota of 5 (its weighted count at the window boundary).
"""

from __future__ import annotations

import bisect

import pytest
from limits.aio.storage import MemoryStorage
from limits.storage import storage_from_string

from tenantry.limits.rates import RateLimits


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def storage_and_clock(request, monkeypatch):
    import limits.aio.storage.memory as memory_module
    import limits.aio.storage.redis.redispy as redis_module

    import tenantry.limits.rates as rates_module

    clock = FakeClock(1_800_000_000.0)
    for module in (memory_module, redis_module, rates_module):
        monkeypatch.setattr(module, "time", clock)
    if request.param == "memory":
        return MemoryStorage(), clock
    url = request.getfixturevalue("redis_url").replace("redis://", "async+redis://", 1)
    return storage_from_string(url, implementation="redispy", key_prefix="window-test"), clock


def _worst_span(admitted: list[float], window: float) -> int:
    """The most admissions in any half-open span [t, t + window), t an admission time."""
    return max(
        (bisect.bisect_left(admitted, t + window) - i for i, t in enumerate(admitted)), default=0
    )


@pytest.mark.parametrize(("quota", "every"), [(5, 0.5), (5, 7.0), (30, 0.9), (120, 0.2)])
async def test_no_window_long_span_admits_more_than_the_quota(storage_and_clock, quota, every):
    storage, clock = storage_and_clock
    limits = RateLimits(storage)
    key = f"tenant-{quota}-{every}"
    admitted: list[float] = []
    refused = 0
    start = clock.now
    while clock.now < start + 180:
        decision = await limits.hit(policy="default", tenant_key=key, per_minute=quota)
        if decision.allowed:
            admitted.append(clock.now)
            assert decision.remaining >= 0
        else:
            refused += 1
            # What the headers promise: nothing before the reset time, something right after.
            assert decision.remaining == 0 and decision.reset_seconds >= 1
        clock.now += every
    assert _worst_span(admitted, 60) <= quota
    # And the limit is not met by refusing everything: a full quota every window.
    assert len(admitted) >= quota * 3 or refused == 0


async def test_peeking_never_counts(storage_and_clock):
    storage, clock = storage_and_clock
    limits = RateLimits(storage)
    for _ in range(3):
        assert (await limits.peek(policy="default", tenant_key="p", per_minute=3)).allowed
    hits = [await limits.hit(policy="default", tenant_key="p", per_minute=3) for _ in range(4)]
    assert [h.allowed for h in hits] == [True, True, True, False]
    assert [h.remaining for h in hits] == [2, 1, 0, 0]
    peek = await limits.peek(policy="default", tenant_key="p", per_minute=3)
    assert not peek.allowed and peek.reset_seconds == 60
    clock.now += 60.001
    assert (await limits.peek(policy="default", tenant_key="p", per_minute=3)).allowed
