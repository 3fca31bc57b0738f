"""When a transaction may be run again: serialisation failures and deadlocks, a bounded number of
times, with jittered exponential backoff.

PostgreSQL aborts one of the transactions in a deadlock (SQLSTATE 40P01) or a serialisation
conflict (40001) and says that running it again is the remedy. The design keeps these rare (locks
are taken in one order, see `tenantry.db.locks`); this is the safety net. A transaction cannot be
re-run from inside its own `async with`, so the unit of work that owns it is re-run instead: the
request (`tenantry.retry_middleware`), the activity (`tenantry.worker.retry`), the CLI command
(`tenantry.cli.common`), or a body handed to `Database.run`.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
log = structlog.get_logger("tenantry.db")


def is_retryable(error: BaseException | None) -> bool:
    """A serialisation failure or deadlock, raised by psycopg itself or wrapped by SQLAlchemy
    (`DBAPIError.orig`) or by code that re-raised it (`raise … from`)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "transaction conflict, retrying",
        attempt=state.attempt_number,
        sqlstate=getattr(getattr(error, "orig", error), "sqlstate", None),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` runs; before run n+1 a random wait in [0, min(max_wait, first_wait·2ⁿ⁻¹)]
    ("full jitter"), so that the transactions that collided do not collide again in step."""

    attempts: int = 4
    first_wait: float = 0.02
    max_wait: float = 0.5

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.attempts),
            wait=wait_random_exponential(multiplier=self.first_wait, max=self.max_wait),
            before_sleep=_log_retry,
            reraise=True,
        )
