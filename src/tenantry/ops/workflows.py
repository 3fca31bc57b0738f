"""A tenant's backup as a durable workflow: one activity that exports, uploads and records it.

The activity is repeatable (an interrupted export leaves only a scratch folder behind and the
record `running`; the next attempt starts the snapshot again), so a worker killed half-way
costs a restart of the export, never a half-written archive: the store receives it whole.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tenantry.ops.types import BackupInput

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,
    non_retryable_error_types=["NotFound", "TenantGone"],
)


@workflow.defn(name="BackupTenant")
class BackupTenant:
    @workflow.run
    async def run(self, job: BackupInput) -> str:
        return await workflow.execute_activity(
            "ops.backup",
            job,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
