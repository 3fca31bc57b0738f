"""The relay has a pool of its own: tenant work that holds every connection of the worker's (a
backup's snapshot, a burst of activities) does not hold up a workflow's start."""

from __future__ import annotations

from tests.conftest import bearer, login
from tests.knowledge.conftest import ingested
from tests.workflows import started


async def test_a_start_is_delivered_while_activities_hold_every_connection(
    client, make_tenant, make_user, temporal_client, worker
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    engine = worker.activities_db.engine
    held = [await engine.connect() for _ in range(engine.pool.size())]
    try:
        assert engine.pool.checkedout() == engine.pool.size()
        created = await client.post(
            "/v1/documents", json={"title": "Apretado", "text": "Sin conexiones."}, headers=headers
        )
        assert created.status_code == 202, created.text
        # Shared, the relay would wait out the pool's timeout (30 s) and then back off.
        await started(temporal_client, f"{tenant.slug}/ingest/{created.json()['id']}")
    finally:
        for connection in held:
            await connection.close()
    assert await ingested(temporal_client, tenant, created.json()["id"]) == "ready"
