"""Document ingestion as a durable workflow: chunk, embed, finish; a failure is recorded as such.

Each step is an idempotent activity, so a worker killed at any point and restarted finishes the
document without duplicate chunks. The workflow holds one of its tenant's `workflows_in_flight`
and gives it back when it ends, however it ends.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from tenantry.knowledge.ingest_types import FailInput, IngestInput
    from tenantry.outbox.steps import releasing_slot

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["UnreadableDocument", "QuotaTooLarge"],
)
# Failures whose message is about the document itself, written for the tenant to read.
TENANT_FACING = ("UnreadableDocument", "QuotaTooLarge")


@workflow.defn(name="IngestDocument")
class IngestDocument:
    def __init__(self) -> None:
        self.stage = "queued"

    @workflow.run
    async def run(self, job: IngestInput) -> str:
        return await releasing_slot(job.tenant_id, self._ingest(job))

    async def _ingest(self, job: IngestInput) -> str:
        try:
            self.stage = "chunking"
            chunks = await workflow.execute_activity(
                "knowledge.prepare_chunks",
                job,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RETRY,
                result_type=int,
            )
            if chunks < 0:
                self.stage = "deleted"
                return self.stage
            self.stage = "embedding"
            await workflow.execute_activity(
                "knowledge.embed_chunks",
                job,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=15),
                retry_policy=RETRY,
                result_type=int,
            )
            await workflow.execute_activity(
                "knowledge.finish",
                job,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
            self.stage = "ready"
        except ActivityError as error:
            reason = _plain_reason(error)
            await workflow.execute_activity(
                "knowledge.fail",
                FailInput(job.tenant_id, job.document_id, reason),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
            self.stage = "failed"
        return self.stage

    @workflow.query
    def status(self) -> str:
        return self.stage


def _plain_reason(error: ActivityError) -> str:
    """What the tenant reads: the document's own problem, never an internal error's text (SQL)."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in TENANT_FACING:
        return cause.message
    if isinstance(cause, TimeoutError):
        return "processing the document took too long"
    return "the document could not be processed (an internal error; the worker logged it)"
