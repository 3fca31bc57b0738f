"""Login throttling: per account with a growing lockout, per client address at a higher
threshold, and operators apart from tenants.

Account: an attempt is counted before its password is checked, atomically, so that attempts
arriving together cannot all pass a check that none has counted yet: each takes a one-minute
lease on the account from the limits backend (memory, or Redis shared by every API process) and
is refused (429) when the account already has N (`TENANTRY_LOGIN_ATTEMPTS_PER_MINUTE`). A right
password gives the lease back; a wrong one keeps it until it expires. Every wrong password is
also remembered for a day, and each one past the Nth locks the account (the first N failures'
own one-minute leases are the first lockout): two minutes at the N+1th, twice as long at each
further one, up to `TENANTRY_LOGIN_LOCKOUT_MAX_SECONDS`. A right password forgets them. (The
`limits` storages cannot give back one counted hit, which a successful login needs; the
concurrency leases can.)

Address: everyone behind one NAT shares it, so attempts in flight there are not counted (a room
of people logging in at once must not be refused), and its threshold is higher: it is refused
once it has `TENANTRY_LOGIN_ADDRESS_FAILURES_PER_MINUTE` failures in the last minute. The address
is the peer's unless a trusted proxy stands for the client (`tenancy.client_address`), so a
client cannot choose its own by sending X-Forwarded-For.

Operators log in on keys of their own: no tenant user's failures, from any address, lock an
operator out.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

from tenantry.errors import AppError
from tenantry.limits.backends import Concurrency

WINDOW_SECONDS = 60
MEMORY_SECONDS = 24 * 3600  # how long a failure counts towards the lockout's growth


class TooManyAttempts(AppError):
    status, code, title = 429, "too-many-login-attempts", "Too many failed logins"


@dataclass(frozen=True)
class Keys:
    account: str
    failures: str
    lock: str
    address: str


class Attempt:
    """One login attempt: it holds its account's lease until it is known to have failed or not."""

    def __init__(self, throttle: LoginThrottle, keys: Keys, lease: str) -> None:
        self.throttle = throttle
        self.keys = keys
        self.lease: str | None = lease

    async def failed(self) -> None:
        """A wrong password: the account keeps its lease, and the failure is remembered."""
        self.lease = None
        await self.throttle.record_failure(self.keys)

    async def succeeded(self) -> None:
        """The right password: the attempt does not count, and earlier failures are forgiven."""
        await self.give_back()
        await self.throttle.leases.clear(self.keys.failures)

    async def give_back(self) -> None:
        """Not a failed login (it never got to check a password): it does not count."""
        lease, self.lease = self.lease, None
        if lease is not None:
            await self.throttle.leases.release(self.keys.account, lease)


class LoginThrottle:
    def __init__(
        self,
        per_minute: int,
        leases: Concurrency,
        *,
        per_address: int | None = None,
        max_lockout_seconds: float = 900,
    ) -> None:
        self.per_minute = per_minute
        self.per_address = per_address or per_minute * 10
        self.max_lockout_seconds = max(WINDOW_SECONDS, max_lockout_seconds)
        self.leases = leases

    @staticmethod
    def keys(tenant: str, email: str, address: str, *, operators: bool = False) -> Keys:
        account = f"login:account:{tenant}:{email.lower()}"
        realm = "operators" if operators else "tenants"
        return Keys(
            account=account,
            failures=f"{account}:failures",
            lock=f"{account}:lock",
            address=f"login:address:{realm}:{address}",
        )

    def lockout_seconds(self, failures: int) -> float:
        """How long the account stays locked after its `failures`-th recent failure."""
        if failures <= self.per_minute:
            return 0  # the failures' own one-minute leases keep it refused
        return min(self.max_lockout_seconds, WINDOW_SECONDS * 2 ** (failures - self.per_minute))

    async def attempt(self, keys: Keys) -> Attempt:
        """Count an attempt on the account, or refuse it (counting nothing)."""
        if await self.leases.in_use(keys.address) >= self.per_address:
            raise await self._refusal(keys.address)
        if await self.leases.in_use(keys.lock):
            raise await self._refusal(keys.lock)
        lease = await self.leases.acquire(keys.account, self.per_minute, seconds=WINDOW_SECONDS)
        if lease is None:
            raise await self._refusal(keys.account)
        return Attempt(self, keys, lease)

    async def record_failure(self, keys: Keys) -> None:
        await self.leases.acquire(keys.address, sys.maxsize, seconds=WINDOW_SECONDS)
        await self.leases.acquire(keys.failures, sys.maxsize, seconds=MEMORY_SECONDS)
        lockout = self.lockout_seconds(await self.leases.in_use(keys.failures))
        if lockout:
            # One lease on the lock at a time, the newest (each lockout ends later than the last).
            await self.leases.clear(keys.lock)
            await self.leases.acquire(keys.lock, sys.maxsize, seconds=lockout)

    async def _refusal(self, key: str) -> TooManyAttempts:
        expiry = await self.leases.last_expiry(key) if key.endswith(":lock") else None
        expiry = expiry or await self.leases.next_expiry(key)
        left = expiry - time.time() if expiry is not None and math.isfinite(expiry) else 1
        retry = max(1, math.ceil(left))
        return TooManyAttempts(
            f"Too many failed logins; try again in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )
