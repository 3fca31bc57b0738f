"""One incident, one durable workflow (`{tenant}/incident/{number}`): triage, then resolve on its
own when the tenant's thresholds allow, or wait for a person, escalating if nobody acts.

A person's actions arrive as signals; `state` answers what the workflow is doing."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from tenantry.events.types import DeliveryInput
    from tenantry.incidents.types import (
        Action,
        Followups,
        IncidentInput,
        RejectInput,
        ResolveInput,
        Triage,
    )
    from tenantry.knowledge.ingest_types import IngestInput

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
STEP = timedelta(minutes=2)
TENANT_ID = SearchAttributeKey.for_keyword("TenantId")


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    def __init__(self) -> None:
        self.status = "open"
        self.pending: list[Action] = []
        self.proposal: str | None = None
        self.confidence: float | None = None
        self.escalations = 0
        self.resolved_by: str | None = None

    @workflow.run
    async def run(self, job: IncidentInput) -> str:
        triage: Triage = await workflow.execute_activity(
            "incidents.triage",
            job,
            start_to_close_timeout=STEP,
            retry_policy=RETRY,
            result_type=Triage,
        )
        self.status, self.proposal, self.confidence = "triaged", triage.proposal, triage.confidence
        if triage.auto_resolve and not self.pending:
            return await self._resolve(job, triage, "system:auto-resolve", triage.proposal, "auto")
        await workflow.execute_activity(
            "incidents.request_approval", job, start_to_close_timeout=STEP, retry_policy=RETRY
        )
        self.status = "awaiting_approval"
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self.pending),
                    timeout=timedelta(minutes=triage.escalate_after_minutes),
                )
            except TimeoutError:
                followups: Followups = await workflow.execute_activity(
                    "incidents.escalate",
                    job,
                    start_to_close_timeout=STEP,
                    retry_policy=RETRY,
                    result_type=Followups,
                )
                self.escalations += 1
                await self._deliver(job, followups, triage.webhook_attempts)
                continue
            action = self.pending.pop(0)
            if action.kind == "approve" and self.status == "awaiting_approval":
                return await self._resolve(
                    job, triage, action.actor, self.proposal or "", "approved"
                )
            if action.kind == "resolve":
                return await self._resolve(job, triage, action.actor, action.text or "", "resolved")
            if action.kind == "reject" and self.status == "awaiting_approval":
                await workflow.execute_activity(
                    "incidents.reject",
                    RejectInput(job, action.actor, action.text),
                    start_to_close_timeout=STEP,
                    retry_policy=RETRY,
                )
                self.status = "triaged"  # the proposal is set aside: a person writes the resolution

    async def _resolve(
        self, job: IncidentInput, triage: Triage, actor: str, text: str, how: str
    ) -> str:
        followups: Followups = await workflow.execute_activity(
            "incidents.resolve",
            ResolveInput(job, actor, text, how),
            start_to_close_timeout=STEP,
            retry_policy=RETRY,
            result_type=Followups,
        )
        self.status, self.resolved_by = "resolved", actor
        if followups.document_id:  # the learning loop: the resolution becomes knowledge
            await workflow.start_child_workflow(
                "IngestDocument",
                IngestInput(job.tenant_id, job.tenant_slug, followups.document_id),
                id=f"{job.tenant_slug}/ingest/{followups.document_id}",
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, job.tenant_slug)]
                ),
            )
        await self._deliver(job, followups, triage.webhook_attempts)
        return how

    async def _deliver(self, job: IncidentInput, followups: Followups, attempts: int) -> None:
        for delivery_id in followups.delivery_ids:
            await workflow.start_child_workflow(
                "DeliverWebhook",
                DeliveryInput(job.tenant_id, delivery_id, attempts),
                id=f"{job.tenant_slug}/webhook/{delivery_id}",
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, job.tenant_slug)]
                ),
            )

    @workflow.signal
    def act(self, action: Action) -> None:
        self.pending.append(action)

    @workflow.query
    def state(self) -> dict:
        return {
            "status": self.status,
            "proposal": self.proposal,
            "confidence": self.confidence,
            "escalations": self.escalations,
            "waiting_for_person": self.status in ("triaged", "awaiting_approval"),
            "resolved_by": self.resolved_by,
        }
