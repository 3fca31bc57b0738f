"""The incident in PostgreSQL and its workflow never disagree: reopening right after a resolution
starts an episode of its own, a proposal that cites no source cannot be approved (the incident
waits for a person), "no source" is never learned, and an action already on its way is not sent
twice."""

from __future__ import annotations

import asyncio

from tenantry.incidents.llm import NO_SOURCE
from tests.conftest import bearer, login
from tests.incidents.conftest import report, run_of, until_waiting


async def _resolved_in_the_database(client, headers, number: str) -> dict:
    for _ in range(600):  # bounded: the resolve activity commits within seconds
        shown = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
        if shown["status"] == "resolved":
            return shown
        await asyncio.sleep(0.02)
    raise AssertionError(f"{number} was never resolved: {shown['status']}")


async def test_reopen_right_after_resolve_starts_the_next_episode(client, desk, temporal_client):
    tenant, headers = desk
    number = (await report(client, headers, severity="high"))["number"]
    for episode in (1, 2, 3, 4):
        await until_waiting(temporal_client, tenant, number, episode)
        resolving = await client.post(
            f"/v1/incidents/{number}/resolve",
            json={"resolution": f"Solución {episode}."},
            headers=headers,
        )
        assert resolving.status_code == 202, resolving.text
        await _resolved_in_the_database(client, headers, number)
        # At once: the run that resolved it may still be finishing its last steps.
        reopened = await client.post(f"/v1/incidents/{number}/reopen", headers=headers)
        assert reopened.status_code == 200, reopened.text
        assert (reopened.json()["status"], reopened.json()["episode"]) == ("open", episode + 1)
        finished = await run_of(temporal_client, tenant, number, episode)
        assert await finished.result() == "resolved"
    state = await until_waiting(temporal_client, tenant, number, 5)
    shown = (await client.get(f"/v1/incidents/{number}/workflow", headers=headers)).json()
    assert shown["episode"] == 5 and shown["status"] == state["status"] == "awaiting_approval"
    done = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
    kinds = [e["kind"] for e in done["timeline"]]
    assert kinds.count("resolved") == 4 and kinds.count("reopened") == 4
    assert done["status"] == "awaiting_approval"


async def test_a_proposal_without_a_source_cannot_be_approved(
    client, make_tenant, make_user, temporal_client, worker, admin_sql
):
    tenant = await make_tenant()  # no knowledge at all
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    number = (await report(client, headers, severity="high"))["number"]
    state = await until_waiting(temporal_client, tenant, number)
    assert state["proposal"] == NO_SOURCE and state["confidence"] == 0

    refused = await client.post(f"/v1/incidents/{number}/approve", headers=headers)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/no-source")
    # Nothing changed: it still waits for a person's resolution.
    assert (await until_waiting(temporal_client, tenant, number)) == state
    shown = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
    assert shown["status"] == "awaiting_approval" and shown["pending_action"] is None

    # A person who answers with the same "no source" sentence teaches nothing.
    resolved = await client.post(
        f"/v1/incidents/{number}/resolve", json={"resolution": NO_SOURCE}, headers=headers
    )
    assert resolved.status_code == 202
    assert await (await run_of(temporal_client, tenant, number)).result() == "resolved"
    done = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
    assert done["knowledge_document_id"] is None
    assert "not_learned" in [e["kind"] for e in done["timeline"]]
    documents = admin_sql.execute(
        "SELECT count(*) FROM documents WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert documents == 0


async def test_an_action_on_its_way_is_not_sent_twice(client, desk, temporal_client):
    tenant, headers = desk
    number = (await report(client, headers, severity="high"))["number"]
    await until_waiting(temporal_client, tenant, number)
    first, second = await asyncio.gather(
        client.post(f"/v1/incidents/{number}/approve", headers=headers),
        client.post(f"/v1/incidents/{number}/approve", headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [202, 409]
    assert await (await run_of(temporal_client, tenant, number)).result() == "approved"
    done = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
    kinds = [e["kind"] for e in done["timeline"]]
    assert kinds.count("approve_requested") == 1 and kinds.count("resolved") == 1
    assert done["pending_action"] is None
