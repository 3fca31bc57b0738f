"""`document.ready`: emitted once when a document's ingestion completes, through the outbox, and
delivered signed to the endpoints that listen for it (a real receiver on loopback)."""

from __future__ import annotations

import asyncio

from tenantry.knowledge.activities import KnowledgeActivities
from tenantry.knowledge.ingest_types import IngestInput
from tests.incidents.conftest import Receiver, register
from tests.knowledge.conftest import add_document
from tests.workflows import started


async def test_a_finished_ingestion_is_delivered_signed_to_its_subscribers(
    client, kb, temporal_client, admin_sql, db, embedder, settings
):
    tenant, headers = kb
    listener, bystander = Receiver(), Receiver()
    try:
        endpoint = await register(client, headers, listener, events=["document.ready"])
        other = await register(client, headers, bystander, events=["incident.created"])
        document = await add_document(
            client, temporal_client, tenant, headers, title="Caldera", text="Pulse el rearme."
        )
        [delivery] = await asyncio.to_thread(listener.wait_for, 1)
        assert delivery["valid"] and delivery["id"].startswith("msg_")
        body = delivery["body"]
        assert body["type"] == "document.ready"
        assert body["data"]["id"] == document["id"] and body["data"]["status"] == "ready"
        assert body["data"]["title"] == "Caldera" and body["data"]["chunk_count"] >= 1

        # The delivery is logged, and its workflow (started by the relay) ends delivered.
        log = (
            await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)
        ).json()["items"]
        assert [d["event_type"] for d in log] == ["document.ready"]
        run = await started(temporal_client, f"{tenant.slug}/webhook/{log[0]['id']}")
        assert await run.result() == "delivered"

        # The finishing activity retried after its commit emits nothing a second time.
        activities = KnowledgeActivities(db, embedder, settings)
        await activities.finish(IngestInput(str(tenant.id), tenant.slug, document["id"]))
        rows = admin_sql.execute(
            "SELECT endpoint_id::text, event_type FROM webhook_deliveries WHERE tenant_id = %s",
            [tenant.id],
        ).fetchall()
        assert rows == [(endpoint["id"], "document.ready")]
        assert not (
            await client.get(f"/v1/webhooks/{other['id']}/deliveries", headers=headers)
        ).json()["items"]
        assert len(listener.received) == 1 and bystander.received == []
    finally:
        listener.close()
        bystander.close()
