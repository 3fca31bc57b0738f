"""Login throttling: at most N failed logins a minute per (tenant, email) and per client address.

An attempt on an account is counted before its password is checked, atomically, so that attempts
arriving together cannot all pass a check that none has counted yet: each takes a one-minute
lease on the account from the limits backend (memory, or Redis shared by every API process) and
is refused (429) when the account already has N. A right password gives the lease back; a wrong
one keeps it until it expires. So an account sees at most N failures in any minute, and never
more than N attempts at once. (The `limits` storages cannot give back one counted hit, which a
successful login needs; the concurrency leases can.)

The address is shared by everyone behind one NAT, so attempts in flight there are not counted
(a room of people logging in at once must not be refused): it is refused once it has N failures
in the last minute, each recorded when its password turned out wrong.
"""

from __future__ import annotations

import math
import sys
import time

from tenantry.errors import AppError
from tenantry.limits.backends import Concurrency

WINDOW_SECONDS = 60


class TooManyAttempts(AppError):
    status, code, title = 429, "too-many-login-attempts", "Too many failed logins"


class Attempt:
    """One login attempt: it holds its account's lease until it is known to have failed or not."""

    def __init__(self, leases: Concurrency, account: str, lease: str, address: str) -> None:
        self.leases = leases
        self.account = account
        self.lease: str | None = lease
        self.address = address

    async def failed(self) -> None:
        """A wrong password: the account keeps its lease, the address records a failure."""
        self.lease = None
        await self.leases.acquire(self.address, sys.maxsize, seconds=WINDOW_SECONDS)

    async def give_back(self) -> None:
        """Not a failed login (right password, or it never got to check): it does not count."""
        lease, self.lease = self.lease, None
        if lease is not None:
            await self.leases.release(self.account, lease)


class LoginThrottle:
    def __init__(self, per_minute: int, leases: Concurrency) -> None:
        self.per_minute = per_minute
        self.leases = leases

    @staticmethod
    def keys(tenant: str, email: str, address: str) -> tuple[str, str]:
        return f"login:account:{tenant}:{email.lower()}", f"login:address:{address}"

    async def attempt(self, keys: tuple[str, str]) -> Attempt:
        """Count an attempt on the account, or refuse it (counting nothing)."""
        account, address = keys
        if await self.leases.in_use(address) >= self.per_minute:
            raise await self._refusal(address)
        lease = await self.leases.acquire(account, self.per_minute, seconds=WINDOW_SECONDS)
        if lease is None:
            raise await self._refusal(account)
        return Attempt(self.leases, account, lease, address)

    async def _refusal(self, key: str) -> TooManyAttempts:
        expiry = await self.leases.next_expiry(key)
        left = expiry - time.time() if expiry is not None and math.isfinite(expiry) else 1
        retry = min(WINDOW_SECONDS, max(1, math.ceil(left)))
        return TooManyAttempts(
            f"Too many failed logins; try again in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )
