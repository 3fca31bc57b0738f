"""One incident episode, one durable workflow (`{tenant}/incident/{number}`, then `/{episode}`
for each reopening): triage, then resolve on its own when the tenant's thresholds allow, or wait
for a person, escalating if nobody acts.

A person's actions arrive as signals (through the outbox); `state` answers what the workflow is
doing. Webhook deliveries and the learning loop's ingestion are started by the activities' own
transactions (the outbox), never from here, so a retried step cannot lose or repeat them. While
the tenant is suspended an escalation waits, and goes on when the tenant is resumed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tenantry.incidents.types import (
        Action,
        EscalateInput,
        Followups,
        IncidentInput,
        RefuseInput,
        RejectInput,
        ResolveInput,
        Triage,
    )
    from tenantry.outbox.steps import Resumable, releasing_slot

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
STEP = timedelta(minutes=2)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow(Resumable):
    def __init__(self) -> None:
        self.status = "open"
        self.pending: list[Action] = []
        self.seen: set[str] = set()
        self.proposal: str | None = None
        self.confidence: float | None = None
        self.sourced = False
        self.escalations = 0
        self.paused = False
        self.resolved_by: str | None = None

    @workflow.run
    async def run(self, job: IncidentInput) -> str:
        return await releasing_slot(job.tenant_id, self._handle(job))

    async def _handle(self, job: IncidentInput) -> str:
        triage: Triage = await self._step("incidents.triage", job, Triage)
        self.status, self.proposal, self.confidence = "triaged", triage.proposal, triage.confidence
        self.sourced = triage.sourced
        if triage.auto_resolve and not self.pending:
            return await self._resolve(job, "system:auto-resolve", triage.proposal, "auto")
        await self._step("incidents.request_approval", job)
        self.status = "awaiting_approval"
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self.pending),
                    timeout=timedelta(minutes=triage.escalate_after_minutes),
                )
            except TimeoutError:
                await self._escalate(job)
                continue
            action = self.pending.pop(0)
            if action.kind == "resolve":
                return await self._resolve(job, action.actor, action.text or "", "resolved")
            if self.status != "awaiting_approval":
                await self._refuse(job, action, f"the proposal was {self.status}")
            elif action.kind == "approve" and not self.sourced:
                await self._refuse(job, action, "the proposal cites no source")
            elif action.kind == "approve":
                return await self._resolve(job, action.actor, self.proposal or "", "approved")
            elif action.kind == "reject":
                await self._step("incidents.reject", RejectInput(job, action.actor, action.text))
                self.status = "triaged"  # the proposal is set aside: a person writes the resolution

    async def _escalate(self, job: IncidentInput) -> None:
        ordinal = self.escalations + 1
        while True:
            seen = self.resumes
            followups: Followups = await self._step(
                "incidents.escalate", EscalateInput(job, ordinal), Followups
            )
            if not followups.paused:
                break
            self.paused = True
            await self.wait_for_resume(seen)
        self.paused = False
        self.escalations = ordinal

    async def _resolve(self, job: IncidentInput, actor: str, text: str, how: str) -> str:
        await self._step("incidents.resolve", ResolveInput(job, actor, text, how), Followups)
        self.status, self.resolved_by = "resolved", actor
        return how

    async def _refuse(self, job: IncidentInput, action: Action, reason: str) -> None:
        await self._step("incidents.refuse", RefuseInput(job, action, reason))

    @staticmethod
    async def _step(name: str, arg, result_type=None):
        return await workflow.execute_activity(
            name, arg, start_to_close_timeout=STEP, retry_policy=RETRY, result_type=result_type
        )

    @workflow.signal
    def act(self, action: Action) -> None:
        if action.id is not None:
            if action.id in self.seen:  # the outbox delivered it twice
                return
            self.seen.add(action.id)
        self.pending.append(action)

    @workflow.query
    def state(self) -> dict:
        return {
            "status": self.status,
            "proposal": self.proposal,
            "confidence": self.confidence,
            "escalations": self.escalations,
            "paused": self.paused,
            "waiting_for_person": self.status in ("triaged", "awaiting_approval"),
            "resolved_by": self.resolved_by,
        }
