"""One lifecycle in every store. Suspending a tenant pauses its background work (an escalation
whose timer is due waits, and no webhook goes out) and resuming continues it. Deleting it
terminates its running workflows, drops its HNSW index, destroys its data key so that what
Temporal keeps of its histories cannot be read, and leaves a receipt that `audit verify` reports."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from typer.testing import CliRunner

from tenantry.cli.main import app as cli
from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.types import EscalateInput, Followups, IncidentInput, Triage
from tenantry.keys.codec import ENCODING, TenantPayloadCodec
from tenantry.keys.service import KeyDestroyed, TenantKeys, platform_key
from tenantry.knowledge.promotion import index_name, promote
from tests.conftest import bearer, cli_json, login
from tests.incidents.conftest import (
    BOILER,
    Receiver,
    asyncio_wait,
    register,
    report,
    run_of,
    until_waiting,
)
from tests.knowledge.conftest import add_document


class Gated(IncidentActivities):
    """Triage waits for the test's go (so the tenant can be suspended first), then hands the
    workflow an escalation timer of a fraction of a second; escalate reports when it paused."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.entered, self.go, self.paused = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @activity.defn(name="incidents.triage")
    async def triage(self, job: IncidentInput) -> Triage:
        result = await super().triage(job)
        self.entered.set()
        await self.go.wait()
        return dataclasses.replace(result, escalate_after_minutes=0.005)

    @activity.defn(name="incidents.escalate")
    async def escalate(self, step: EscalateInput) -> Followups:
        result = await super().escalate(step)
        if result.paused:
            self.paused.set()
        return result


def _escalations(admin_sql, tenant) -> tuple[str, int, int]:
    severity = admin_sql.execute(
        "SELECT severity FROM incidents WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    events = admin_sql.execute(
        "SELECT count(*) FROM incident_events WHERE tenant_id = %s AND kind = 'escalated'",
        [tenant.id],
    ).fetchone()[0]
    deliveries = admin_sql.execute(
        "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = %s "
        "AND event_type = 'incident.escalated'",
        [tenant.id],
    ).fetchone()[0]
    return severity, events, deliveries


async def test_suspend_pauses_a_due_escalation_and_resume_continues_it(
    client,
    dedicated_tenant,
    dedicated_worker,
    temporal_client,
    admin_sql,
    operator_headers,
    worker,
):
    tenant, headers = dedicated_tenant
    target = Receiver()
    admin = f"/v1/admin/tenants/{tenant.slug}"
    try:
        async with dedicated_worker(tenant, Gated) as steps:
            await register(client, headers, target, events=["incident.escalated"])
            await add_document(
                client, temporal_client, tenant, headers, title="Caldera", text=BOILER
            )
            incident = await report(client, headers, severity="medium")
            await asyncio.wait_for(steps.entered.wait(), 60)
            suspended = await client.post(f"{admin}/suspend", headers=operator_headers)
            assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
            steps.go.set()
            # The timer comes due while the tenant is suspended: the escalation pauses.
            await asyncio.wait_for(steps.paused.wait(), 60)
            run = await run_of(temporal_client, tenant, incident["number"])
            state = await run.query("state")
            assert state["paused"] and state["escalations"] == 0
            assert _escalations(admin_sql, tenant) == ("medium", 0, 0)
            assert target.received == []
            noted = admin_sql.execute(
                "SELECT workflow_id FROM paused_workflows WHERE tenant_id = %s", [tenant.id]
            ).fetchall()
            assert noted == [(run.id,)]

            resumed = await client.post(f"{admin}/resume", headers=operator_headers)
            assert resumed.status_code == 200 and resumed.json()["status"] == "active"
            [delivery] = (await asyncio_wait(target, 1))[:1]
            assert delivery["body"]["type"] == "incident.escalated"
            assert delivery["body"]["data"]["severity"] == "high"
            approved = await client.post(
                f"/v1/incidents/{incident['number']}/approve", headers=headers
            )
            assert approved.status_code == 202
            assert await run.result() == "approved"
    finally:
        target.close()
    severity, events, deliveries = _escalations(admin_sql, tenant)
    assert events >= 1 and deliveries == events and severity in ("high", "critical")
    assert (
        admin_sql.execute(
            "SELECT count(*) FROM paused_workflows WHERE tenant_id = %s", [tenant.id]
        ).fetchone()[0]
        == 0
    )


def _payloads(history) -> list:
    """Every payload Temporal keeps of a workflow's inputs, results and signals."""
    found = []
    for event in history.events:
        for attributes in (
            event.workflow_execution_started_event_attributes.input,
            event.activity_task_scheduled_event_attributes.input,
            event.activity_task_completed_event_attributes.result,
            event.workflow_execution_signaled_event_attributes.input,
        ):
            found.extend(attributes.payloads)
    return found


async def test_delete_terminates_workflows_and_leaves_nothing_readable(
    client,
    make_tenant,
    make_user,
    temporal_client,
    stack,
    settings,
    db,
    admin_sql,
    operator_headers,
    worker,
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    marker = f"marcador{uuid.uuid4().hex[:12]}"
    # A sentence the extractive proposal picks, so the marker travels in the workflow's payloads.
    text = f"{BOILER} Si la caldera no enciende tras un corte de luz, anote el código {marker}."
    await add_document(client, temporal_client, tenant, headers, title="Caldera", text=text)
    await asyncio.to_thread(promote, stack.admin_url, threshold=1, tenant_id=tenant.id)
    index = index_name(tenant.id)
    assert admin_sql.execute("SELECT 1 FROM pg_class WHERE relname = %s", [index]).fetchone()
    incident = await report(client, headers, severity="high")
    state = await until_waiting(temporal_client, tenant, incident["number"])
    assert marker in state["proposal"]
    run = await run_of(temporal_client, tenant, incident["number"])

    # At rest in Temporal the tenant's payloads are ciphertext; with its key they read back.
    kept = _payloads(await run.fetch_history())
    assert kept and all(p.metadata["encoding"] == ENCODING for p in kept)
    assert all(marker.encode() not in p.SerializeToString() for p in kept)
    reader = TenantPayloadCodec(TenantKeys(db, platform_key(settings)))
    assert any(marker.encode() in p.data for p in await reader.decode(kept))

    deleted = await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=operator_headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"

    with pytest.raises(WorkflowFailureError):
        await run.result()  # the relay's clean-up terminated it
    assert (await run.describe()).status == WorkflowExecutionStatus.TERMINATED
    kept = _payloads(await run.fetch_history())
    fresh = TenantPayloadCodec(TenantKeys(db, platform_key(settings)))
    with pytest.raises(KeyDestroyed):
        await fresh.decode(kept)
    for _ in range(1500):  # the clean-up also drops the tenant's own index (bounded wait)
        cleaned = admin_sql.execute(
            "SELECT index_dropped FROM tenant_deletions WHERE tenant = %s", [tenant.id]
        ).fetchone()
        if cleaned and cleaned[0]:
            break
        await asyncio.sleep(0.02)
    assert not admin_sql.execute("SELECT 1 FROM pg_class WHERE relname = %s", [index]).fetchone()

    verified = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/audit/verify", headers=operator_headers
    )
    report_ = verified.json()
    assert verified.status_code == 200 and report_["ok"] is True
    receipt = report_["deletion"]
    assert receipt["actor"].startswith("operator:") and receipt["key_destroyed"] is True
    assert receipt["purged"]["documents"] == 1 and receipt["purged"]["incidents"] == 1
    assert receipt["audit_head_seq"] == report_["events"] > 0
    assert receipt["workflows_terminated"] >= 1 and receipt["index_dropped"] is True
    # Its audit log, whose final head the receipt keeps, went too: by the owner role's purge.
    assert receipt["purged"]["audit_events"] == receipt["audit_head_seq"]
    assert not admin_sql.execute(
        "SELECT 1 FROM audit_events WHERE tenant_id = %s", [tenant.id]
    ).fetchone()

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify", tenant.slug])
    assert result.exit_code == 0, result.output
    printed = cli_json(result.output)
    assert printed["ok"] and printed["deletion"]["audit_head_hash"] == receipt["audit_head_hash"]
