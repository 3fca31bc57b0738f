"""Activities whose transaction failed with a serialisation failure or a deadlock run again at once,
within the same attempt, under the database's policy (a bounded number of times, jittered).

Every activity is idempotent (run twice, it leaves what one run leaves), so re-running the whole
activity is safe. When the policy is spent the error goes to Temporal, whose own retry policy
takes over with its longer backoff.
"""

from __future__ import annotations

import temporalio.worker

from tenantry.db.session import Database


class RetryTransactions(temporalio.worker.Interceptor):
    def __init__(self, db: Database) -> None:
        self.db = db

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _RetryingActivity(next, self.db)


class _RetryingActivity(temporalio.worker.ActivityInboundInterceptor):
    def __init__(self, next: temporalio.worker.ActivityInboundInterceptor, db: Database) -> None:
        super().__init__(next)
        self.db = db

    async def execute_activity(self, input):
        async for attempt in self.db.retrying():
            with attempt:
                return await self.next.execute_activity(input)
        raise AssertionError("unreachable: tenacity re-raises the last failure")
