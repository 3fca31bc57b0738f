"""A tenant's backup and restore as durable workflows.

The backup activity is repeatable (an interrupted export leaves only a scratch folder behind and
the record `running`; the next attempt starts the snapshot again), so a worker killed half-way
costs a restart of the export, never a half-written archive: the store receives it whole. A
schedule's run records its backup first (under an id the workflow's history keeps, so a retry
finds the same record), and prunes the tenant's backups by retention after it.

A restore (or clone) is one activity too: fetch, verify, safety backup, and the swap in one
transaction; a retry finds the safety backup it already took. When it gives up, the record says
`failed` and why.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tenantry.ops.types import BackupInput, MoveInput, RestoreInput, ScheduledBackup

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,
    non_retryable_error_types=["NotFound", "TenantGone"],
)
RESTORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=3,
    # The archive, the tenant or the request is wrong: trying again changes nothing.
    non_retryable_error_types=[
        "NotFound",
        "TenantGone",
        "ArchiveCorrupt",
        "OtherTenant",
        "SchemaMismatch",
        "Conflict",
    ],
)
SHORT = timedelta(minutes=1)


@workflow.defn(name="BackupTenant")
class BackupTenant:
    @workflow.run
    async def run(self, job: BackupInput) -> str:
        backup_id = job.backup_id
        if backup_id is None:
            backup_id = await workflow.execute_activity(
                "ops.record_scheduled",
                ScheduledBackup(
                    tenant_id=job.tenant_id,
                    backup_id=str(workflow.uuid4()),
                    cadence=job.cadence or "daily",
                    schedule=workflow.info().workflow_id,
                ),
                start_to_close_timeout=SHORT,
                retry_policy=RETRY,
            )
        status = await workflow.execute_activity(
            "ops.backup",
            BackupInput(tenant_id=job.tenant_id, backup_id=backup_id),
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        if job.cadence is not None:
            await workflow.execute_activity(
                "ops.prune",
                job.tenant_id,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
            )
        return status


@workflow.defn(name="RestoreTenant")
class RestoreTenant:
    @workflow.run
    async def run(self, job: RestoreInput) -> str:
        try:
            return await workflow.execute_activity(
                "ops.restore",
                job,
                start_to_close_timeout=timedelta(hours=2),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RESTORE_RETRY,
            )
        except ActivityError as error:
            cause = error.cause or error
            await workflow.execute_activity(
                "ops.restore_failed",
                args=[job, str(cause)[:1000]],
                start_to_close_timeout=SHORT,
                retry_policy=RETRY,
            )
            raise


@workflow.defn(name="MoveTenant")
class MoveTenant:
    """A move between cells: one activity, repeatable step by step (see `ops.moves`)."""

    @workflow.run
    async def run(self, job: MoveInput) -> str:
        return await workflow.execute_activity(
            "ops.move",
            job,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
