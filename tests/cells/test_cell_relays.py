"""A cell registered while the worker runs gets an outbox relay without a restart: a workflow
that a tenant moved there starts through its outbox is delivered."""

from __future__ import annotations

import asyncio
import uuid

from tenantry.tenants import cells
from tenantry.worker.runner import CellRelays
from tests.cells.test_routing import moved
from tests.conftest import bearer, login
from tests.workflows import started


async def test_a_cell_registered_after_the_worker_started_gets_a_relay(
    client, worker, temporal_client, db, settings, make_tenant, make_user
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    name = f"late-{uuid.uuid4().hex[:8]}"
    location = cells.check(settings, name=name, database=name.replace("-", "_"), url_env=None)
    await asyncio.to_thread(cells.provision, settings, settings.database_url, location)
    async with db.control() as session:
        await cells.register(session, name=name, location=location)
    await moved(db, settings, tenant, name)

    created = await client.post(
        "/v1/incidents", json={"title": "Queue stuck", "description": "late cell"}, headers=headers
    )
    assert created.status_code == 201, created.text
    number = created.json()["number"].removeprefix("INC-")
    handle = await started(temporal_client, f"{tenant.slug}/incident/{number}")
    assert (await handle.describe()).id == f"{tenant.slug}/incident/{number}"
    (cell_relays,) = [c for c in worker.relay.chores if isinstance(c, CellRelays)]
    assert name in cell_relays.relays
