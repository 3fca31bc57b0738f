"""One webhook delivery as a durable workflow: retried with exponential backoff up to the tenant's
maximum of attempts, then recorded as failed. While the tenant is suspended it waits, and goes on
when the tenant is resumed."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from tenantry.events.types import DeliveryInput, GiveUpInput
    from tenantry.outbox.steps import Resumable


@workflow.defn(name="DeliverWebhook")
class DeliverWebhook(Resumable):
    @workflow.run
    async def run(self, job: DeliveryInput) -> str:
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=job.first_retry_seconds),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(minutes=10),
            maximum_attempts=job.max_attempts,
            non_retryable_error_types=["ForbiddenTarget", "DeliveryGone", "TenantSuspended"],
        )
        while True:
            seen = self.resumes
            try:
                await workflow.execute_activity(
                    "events.deliver",
                    job,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=retry,
                )
                return "delivered"
            except ActivityError as error:
                cause = error.cause
                if isinstance(cause, ApplicationError) and cause.type == "TenantSuspended":
                    await self.wait_for_resume(seen)
                    continue
                reason = getattr(cause, "message", None) or str(cause or error)
                await workflow.execute_activity(
                    "events.give_up",
                    GiveUpInput(job.tenant_id, job.delivery_id, reason),
                    start_to_close_timeout=timedelta(seconds=30),
                )
                return "failed"
