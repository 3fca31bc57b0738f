"""Incidents through the API and their workflow: numbering, triage with sources, a person's
approval, rejection and resolution, auto-resolution, the learning loop, audit and timeline."""

from __future__ import annotations

import asyncio

from tests.incidents.conftest import handle, report, run_of, until_waiting
from tests.knowledge.conftest import ingested


async def test_numbers_are_per_tenant_and_have_no_gaps_under_concurrency(
    client, desk, make_tenant, make_user
):
    from tests.conftest import bearer, login

    _, headers = desk
    created = await asyncio.gather(
        *(report(client, headers, title=f"Fallo {i}") for i in range(12))
    )
    assert sorted(int(c["number"].removeprefix("INC-")) for c in created) == list(range(1, 13))
    other = await make_tenant()
    other_headers = bearer(
        (await login(client, other, await make_user(other, "member")))["access_token"]
    )
    assert (await report(client, other_headers))["number"] == "INC-1"


async def test_triage_proposes_from_the_tenants_knowledge_then_a_person_approves(
    client, desk, temporal_client, admin_sql
):
    tenant, headers = desk
    incident = await report(client, headers, severity="high")
    state = await until_waiting(temporal_client, tenant, incident["number"])
    shown = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert (
        shown["status"] == "awaiting_approval" and shown["proposal"] and "[1]" in shown["proposal"]
    )
    assert shown["sources"][0]["title"] == "Caldera bloqueada" and 0 <= shown["confidence"] <= 1
    assert state["proposal"] == shown["proposal"]
    workflow = (
        await client.get(f"/v1/incidents/{incident['number']}/workflow", headers=headers)
    ).json()
    assert workflow["status"] == "awaiting_approval" and workflow["waiting_for_person"] is True

    approved = await client.post(f"/v1/incidents/{incident['number']}/approve", headers=headers)
    assert approved.status_code == 202
    assert await handle(temporal_client, tenant, incident["number"]).result() == "approved"
    done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert done["status"] == "resolved" and done["resolution"] == shown["proposal"]
    assert done["resolved_by"].startswith("user:admin-")
    kinds = [e["kind"] for e in done["timeline"]]
    assert kinds[:3] == ["reported", "triaged", "approval_requested"] and kinds[-1] == "resolved"
    audited = admin_sql.execute(
        "SELECT actor FROM audit_events WHERE tenant_id = %s AND action = 'incident.resolved'",
        [tenant.id],
    ).fetchall()
    assert audited == [(done["resolved_by"],)]
    # An ended run's state is read from the incident, as the run itself still tells it.
    ended = (
        await client.get(f"/v1/incidents/{incident['number']}/workflow", headers=headers)
    ).json()
    told = await handle(temporal_client, tenant, incident["number"]).query("state")
    assert {key: ended[key] for key in told} == told and told["status"] == "resolved"
    # The learning loop: the resolution is now knowledge of this tenant.
    assert await ingested(temporal_client, tenant, done["knowledge_document_id"]) == "ready"
    learned = (
        await client.get(f"/v1/documents/{done['knowledge_document_id']}", headers=headers)
    ).json()
    assert learned["tags"] == ["incident-resolution"] and learned["title"].startswith(
        incident["number"]
    )


async def test_reject_then_resolve_with_a_persons_text(client, desk, temporal_client):
    tenant, headers = desk
    incident = await report(client, headers, severity="critical")
    await until_waiting(temporal_client, tenant, incident["number"])
    rejected = await client.post(
        f"/v1/incidents/{incident['number']}/reject", json={"reason": "not this"}, headers=headers
    )
    assert rejected.status_code == 202
    resolved = await client.post(
        f"/v1/incidents/{incident['number']}/resolve",
        json={"resolution": "Cambiada la placa electrónica."},
        headers=headers,
    )
    assert resolved.status_code == 202
    assert await handle(temporal_client, tenant, incident["number"]).result() == "resolved"
    done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert done["resolution"] == "Cambiada la placa electrónica."
    assert "proposal_rejected" in [e["kind"] for e in done["timeline"]]


async def test_invalid_transitions_are_409_and_close_and_reopen_work(client, desk, temporal_client):
    tenant, headers = desk
    incident = await report(client, headers)
    number = incident["number"]
    await until_waiting(temporal_client, tenant, number)
    closing = await client.post(f"/v1/incidents/{number}/close", headers=headers)
    assert closing.status_code == 409 and closing.json()["type"].endswith("/invalid-transition")
    await client.post(f"/v1/incidents/{number}/approve", headers=headers)
    await handle(temporal_client, tenant, number).result()
    assert (
        await client.post(f"/v1/incidents/{number}/approve", headers=headers)
    ).status_code == 409
    assert (await client.post(f"/v1/incidents/{number}/close", headers=headers)).json()[
        "status"
    ] == "closed"
    reopened = await client.post(f"/v1/incidents/{number}/reopen", headers=headers)
    assert reopened.json()["status"] == "open" and reopened.json()["episode"] == 2
    await until_waiting(temporal_client, tenant, number, episode=2)  # a run of its own
    assert (await client.get("/v1/incidents/INC-999", headers=headers)).status_code == 404
    assert (await client.get("/v1/incidents/INC-999999", headers=headers)).status_code == 404
    malformed = await client.get("/v1/incidents/not-a-handle", headers=headers)
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "path.number"


async def test_low_severity_and_high_confidence_resolve_on_their_own(client, desk, temporal_client):
    tenant, headers = desk
    await client.patch(
        "/v1/config",
        json={
            "incidents": {"auto_resolve_max_severity": "medium", "auto_resolve_min_confidence": 0.2}
        },
        headers=headers,
    )
    incident = await report(client, headers, severity="low")
    assert await (await run_of(temporal_client, tenant, incident["number"])).result() == "auto"
    done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert done["status"] == "resolved" and done["resolved_by"] == "system:auto-resolve"
    high = await report(client, headers, severity="high")  # above the auto-resolve severity
    await until_waiting(temporal_client, tenant, high["number"])


async def test_list_filters_and_validation(client, desk):
    _, headers = desk
    await report(client, headers, severity="low", area="calefacción")
    await report(client, headers, severity="high", area="red")
    only_high = (
        await client.get("/v1/incidents", params={"severity": "high"}, headers=headers)
    ).json()
    assert {i["severity"] for i in only_high["items"]} == {"high"}
    by_area = (await client.get("/v1/incidents", params={"area": "red"}, headers=headers)).json()
    assert [i["area"] for i in by_area["items"]] == ["red"]
    bad = await client.post(
        "/v1/incidents",
        json={"title": "x", "description": "y", "severity": "apocalyptic"},
        headers=headers,
    )
    assert bad.status_code == 422 and "body.severity" in bad.json()["detail"]
    missing = await client.post("/v1/incidents", json={"title": "x"}, headers=headers)
    assert missing.status_code == 422 and "body.description" in missing.json()["detail"]
