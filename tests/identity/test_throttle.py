"""The login throttle's leases, on a fake clock: failures expire after a minute, successes and
attempts that never got to check a password do not count."""

from __future__ import annotations

import pytest

from tenantry.identity.throttle import LoginThrottle, TooManyAttempts
from tenantry.limits.backends import MemoryConcurrency


class FakeClock:
    now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    import tenantry.identity.throttle as throttle_module
    import tenantry.limits.backends as backends_module

    fake = FakeClock()
    monkeypatch.setattr(backends_module, "time", fake)
    monkeypatch.setattr(throttle_module, "time", fake)
    return fake


async def test_failures_count_for_a_minute_then_expire(clock):
    throttle = LoginThrottle(3, MemoryConcurrency())
    keys = throttle.keys("acme", "Ana@Example.com", "192.0.2.1")
    for _ in range(3):
        await (await throttle.attempt(keys)).failed()
        clock.now += 10
    with pytest.raises(TooManyAttempts) as refused:
        await throttle.attempt(keys)
    assert refused.value.headers["Retry-After"] == "30"  # the first failure leaves at +60
    clock.now += 30.5
    await throttle.attempt(keys)  # one place again


async def test_successes_give_their_place_back(clock):
    throttle = LoginThrottle(2, MemoryConcurrency())
    keys = throttle.keys("acme", "ana@example.com", "192.0.2.2")
    for _ in range(10):
        await (await throttle.attempt(keys)).give_back()
    held = [await throttle.attempt(keys) for _ in range(2)]  # two in flight: the account is full
    with pytest.raises(TooManyAttempts):
        await throttle.attempt(keys)
    await held[0].give_back()
    await throttle.attempt(keys)


async def test_the_address_counts_failures_not_attempts_in_flight(clock):
    throttle = LoginThrottle(2, MemoryConcurrency(), per_address=2)
    address = "192.0.2.3"
    in_flight = [
        await throttle.attempt(throttle.keys("acme", f"u{i}@example.com", address))
        for i in range(5)
    ]
    for attempt in in_flight[:2]:
        await attempt.failed()
    with pytest.raises(TooManyAttempts):  # two failures from this address in the last minute
        await throttle.attempt(throttle.keys("acme", "other@example.com", address))


async def test_each_failure_past_the_limit_doubles_the_lockout_up_to_the_cap(clock):
    throttle = LoginThrottle(3, MemoryConcurrency(), max_lockout_seconds=300)
    keys = throttle.keys("acme", "ana@example.com", "192.0.2.4")

    async def fail_once() -> None:
        await (await throttle.attempt(keys)).failed()

    for _ in range(3):
        await fail_once()
    clock.now += 61  # the first three failures' minute is over
    for expected in (120, 240, 300, 300):  # 2x, 4x, then the cap
        await fail_once()
        with pytest.raises(TooManyAttempts) as refused:
            await throttle.attempt(keys)
        assert int(refused.value.headers["Retry-After"]) == expected
        clock.now += expected - 1
        with pytest.raises(TooManyAttempts):  # still locked a second before the end
            await throttle.attempt(keys)
        clock.now += 1.5


async def test_the_right_password_forgives_earlier_failures(clock):
    throttle = LoginThrottle(3, MemoryConcurrency())
    keys = throttle.keys("acme", "ana@example.com", "192.0.2.5")
    for _ in range(3):
        await (await throttle.attempt(keys)).failed()
    clock.now += 61
    await (await throttle.attempt(keys)).succeeded()
    await (await throttle.attempt(keys)).failed()  # the first failure of a new series
    await throttle.attempt(keys)  # so no lockout


async def test_operators_and_tenant_users_do_not_share_an_address_count(clock):
    throttle = LoginThrottle(5, MemoryConcurrency(), per_address=2)
    address = "192.0.2.6"
    for i in range(2):
        await (await throttle.attempt(throttle.keys("acme", f"u{i}@example.com", address))).failed()
    with pytest.raises(TooManyAttempts):
        await throttle.attempt(throttle.keys("acme", "other@example.com", address))
    operator = throttle.keys("operators", "ops@example.com", address, operators=True)
    await throttle.attempt(operator)
