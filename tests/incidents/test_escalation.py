"""The escalation timer, without waiting real hours: the same workflow and escalation activity,
with a triage that hands the workflow a timer of about a second instead of the tenant's hours."""

from __future__ import annotations

import asyncio
import dataclasses

from temporalio import activity

from tenantry.incidents.activities import IncidentActivities
from tenantry.incidents.types import IncidentInput, Triage
from tests.incidents.conftest import report, run_of


class FastClock(IncidentActivities):
    """Triage as usual, then the escalation period shrunk from minutes to about a second."""

    seen_minutes: list[float] = []

    @activity.defn(name="incidents.triage")
    async def triage(self, job: IncidentInput) -> Triage:
        result = await super().triage(job)
        self.seen_minutes.append(result.escalate_after_minutes)
        return dataclasses.replace(result, escalate_after_minutes=0.02)


async def test_nobody_acts_so_severity_rises_and_escalations_are_emitted(
    client, dedicated_tenant, dedicated_worker, temporal_client, admin_sql, worker
):
    tenant, headers = dedicated_tenant
    await client.patch(
        "/v1/config", json={"incidents": {"escalation_after_minutes": 240}}, headers=headers
    )
    await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/erp", "events": ["incident.escalated"]},
        headers=headers,
    )
    async with dedicated_worker(tenant, FastClock) as activities:
        incident = await report(client, headers, severity="medium")
        run = await run_of(temporal_client, tenant, incident["number"])
        for _ in range(400):  # until two escalations happened (bounded)
            state = await asyncio.wait_for(run.query("state"), 10)
            if state["escalations"] >= 2:
                break
            await asyncio.sleep(0.05)
        # No knowledge, so nothing to approve: a person writes the resolution.
        resolved = await client.post(
            f"/v1/incidents/{incident['number']}/resolve",
            json={"resolution": "Cambiado el termopar."},
            headers=headers,
        )
        assert resolved.status_code == 202
        assert await run.result() == "resolved"
    assert activities.seen_minutes == [240]  # the tenant's own setting reached the workflow
    assert state["escalations"] >= 2 and state["waiting_for_person"]
    done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    escalated = [e for e in done["timeline"] if e["kind"] == "escalated"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in escalated[:2]] == [
        ("medium", "high"),
        ("high", "critical"),
    ]
    assert done["severity"] == "critical" and done["status"] == "resolved"
    emitted = admin_sql.execute(
        "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = %s AND event_type = 'incident.escalated'",
        [tenant.id],
    ).fetchone()[0]
    assert emitted == len(escalated)
