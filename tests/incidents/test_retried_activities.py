"""Each incident activity retried after its commit does nothing twice and returns what its first
attempt returned: called twice with the same input, and through a real worker whose activities
fail right after committing (Temporal retries them)."""

from __future__ import annotations

import asyncio
import dataclasses

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from tenantry.events.activities import EventActivities
from tenantry.incidents import service as incidents
from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.schemas import IncidentCreate
from tenantry.incidents.types import (
    EscalateInput,
    Followups,
    IncidentInput,
    RejectInput,
    ResolveInput,
    Triage,
)
from tests.incidents.conftest import BOILER, Receiver, asyncio_wait, register, report, run_of
from tests.knowledge.conftest import add_document, ingested
from tests.workflows import started


async def _quiet_incident(db, tenant, **fields) -> IncidentInput:
    """An incident with no workflow of its own, so only the test calls its activities."""
    data = IncidentCreate(title="Caldera no enciende", description="Tras el apagón.", **fields)
    async with db.tenant(tenant.id) as session:
        incident = await incidents.create(session, tenant_id=tenant.id, data=data, reporter="test")
    return IncidentInput(str(tenant.id), tenant.slug, str(incident.id), incident.number)


def _count(admin_sql, sql: str, *params) -> int:
    return admin_sql.execute(sql, list(params)).fetchone()[0]


def _events(admin_sql, job: IncidentInput, kind: str) -> int:
    return _count(
        admin_sql,
        "SELECT count(*) FROM incident_events WHERE incident_id = %s AND kind = %s",
        job.incident_id,
        kind,
    )


async def twice(env: ActivityEnvironment, fn, arg):
    return await env.run(fn, arg), await env.run(fn, arg)


async def test_each_activity_called_twice_does_its_work_once(
    client, desk, db, embedder, settings, admin_sql, receiver
):
    tenant, headers = desk
    await register(client, headers, receiver(), events=["incident.escalated", "incident.resolved"])
    steps = IncidentActivities(db, embedder, settings)
    job = await _quiet_incident(db, tenant, severity="medium")
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"{tenant.slug}/incident/{job.number}")

    first, again = await twice(env, steps.triage, job)
    assert again == first and first.sourced and "[1]" in first.proposal
    assert _events(admin_sql, job, "triaged") == 1

    await twice(env, steps.request_approval, job)
    assert _events(admin_sql, job, "approval_requested") == 1

    first, again = await twice(env, steps.escalate, EscalateInput(job, 1))
    assert again == first and first.severity == "high" and len(first.delivery_ids) == 1
    assert _events(admin_sql, job, "escalated") == 1
    second = await env.run(steps.escalate, EscalateInput(job, 2))  # a new ordinal: a new effect
    assert second.severity == "critical" and second.delivery_ids != first.delivery_ids
    deliveries = _count(
        admin_sql,
        "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = %s "
        "AND event_type = 'incident.escalated'",
        tenant.id,
    )
    assert deliveries == 2

    await twice(env, steps.reject, RejectInput(job, "user:x", "no"))
    assert _events(admin_sql, job, "proposal_rejected") == 1

    resolution = ResolveInput(job, "user:x", "Rearmar la caldera tres segundos.", "resolved")
    first, again = await twice(env, steps.resolve, resolution)
    assert again == first and first.document_id and len(first.delivery_ids) == 1
    assert _events(admin_sql, job, "resolved") == 1
    assert (
        _count(
            admin_sql,
            "SELECT count(*) FROM audit_events WHERE tenant_id = %s AND action = 'incident.resolved'",
            tenant.id,
        )
        == 1
    )
    # What the first attempt set going was written with it, once: the learned document's
    # ingestion and each delivery's workflow.
    starts = admin_sql.execute(
        "SELECT workflow_type, count(*) FROM outbox WHERE tenant_id = %s AND kind = 'start' "
        "AND (workflow_id = %s OR workflow_id = ANY(%s)) GROUP BY workflow_type",
        [
            tenant.id,
            f"{tenant.slug}/ingest/{first.document_id}",
            [f"{tenant.slug}/webhook/{d}" for d in first.delivery_ids],
        ],
    ).fetchall()
    assert dict(starts) == {"IngestDocument": 1, "DeliverWebhook": 1}


async def test_deliver_called_twice_posts_once(
    client, desk, db, settings, receiver, admin_sql, temporal_client
):
    from tenantry.events.types import DeliveryInput

    tenant, headers = desk
    target = receiver()
    endpoint = await register(client, headers, target, events=["incident.created"])
    await report(client, headers)
    [delivery_id] = [
        str(r[0])
        for r in admin_sql.execute(
            "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s", [endpoint["id"]]
        ).fetchall()
    ]
    delivering = await started(temporal_client, f"{tenant.slug}/webhook/{delivery_id}")
    assert await delivering.result() == "delivered"  # its attempt committed `delivered`
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"{tenant.slug}/webhook/{delivery_id}")
    sending = EventActivities(db, settings)
    assert await env.run(sending.deliver, DeliveryInput(str(tenant.id), delivery_id, 3)) == 204
    assert len(target.received) == 1


class FailsAfterCommit(IncidentActivities):
    """Escalate and resolve commit, then their first attempt fails as if the worker had died
    before reporting; triage hands the workflow a timer of a fraction of a second."""

    @activity.defn(name="incidents.triage")
    async def triage(self, job: IncidentInput) -> Triage:
        return dataclasses.replace(await super().triage(job), escalate_after_minutes=0.01)

    @activity.defn(name="incidents.escalate")
    async def escalate(self, step: EscalateInput) -> Followups:
        result = await super().escalate(step)
        if activity.info().attempt == 1:
            raise RuntimeError("lost after the commit")
        return result

    @activity.defn(name="incidents.resolve")
    async def resolve(self, step: ResolveInput) -> Followups:
        result = await super().resolve(step)
        if activity.info().attempt == 1:
            raise RuntimeError("lost after the commit")
        return result


async def test_steps_retried_by_temporal_after_their_commit_happen_once(
    client, dedicated_tenant, dedicated_worker, temporal_client, admin_sql, worker
):
    tenant, headers = dedicated_tenant
    target = Receiver()
    try:
        async with dedicated_worker(tenant, FailsAfterCommit):
            await register(
                client, headers, target, events=["incident.escalated", "incident.resolved"]
            )
            await add_document(
                client, temporal_client, tenant, headers, title="Caldera bloqueada", text=BOILER
            )
            incident = await report(client, headers, severity="medium")
            run = await run_of(temporal_client, tenant, incident["number"])
            for _ in range(600):  # until the first escalation went through its retry (bounded)
                if (await run.query("state"))["escalations"] >= 1:
                    break
                await asyncio.sleep(0.05)
            approved = await client.post(
                f"/v1/incidents/{incident['number']}/approve", headers=headers
            )
            assert approved.status_code == 202, approved.text
            assert await run.result() == "approved"
            state = await run.query("state")
            done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
            assert await ingested(temporal_client, tenant, done["knowledge_document_id"]) == "ready"
            escalated = [e for e in done["timeline"] if e["kind"] == "escalated"]
            received = await asyncio_wait(target, len(escalated) + 1)
    finally:
        target.close()
    # One severity step, one event and one webhook per escalation; one resolution, learned.
    assert len(escalated) == state["escalations"] >= 1
    assert [e["data"]["ordinal"] for e in escalated] == list(range(1, len(escalated) + 1))
    assert [e["data"]["from"] for e in escalated][:2] == ["medium", "high"][: len(escalated)]
    assert [e["kind"] for e in done["timeline"]].count("resolved") == 1
    kinds = sorted(r["body"]["type"] for r in received)
    assert kinds == sorted(["incident.escalated"] * len(escalated) + ["incident.resolved"])
    pending = admin_sql.execute(
        "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = %s AND status <> 'delivered'",
        [tenant.id],
    ).fetchone()[0]
    assert pending == 0
