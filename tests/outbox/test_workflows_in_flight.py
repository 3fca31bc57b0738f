"""`workflows_in_flight` (free tier: 2) holds at exactly its limit under parallel creations and
two relays: the API still answers at once, the relays start a tenant's next workflow only when
one of its running ones ends (finished, or terminated and found so), never a third at a time."""

from __future__ import annotations

import asyncio

from temporalio.service import RPCError, RPCStatusCode

from tenantry.db.urls import libpq_dsn
from tenantry.worker.runner import build_relay
from tests.conftest import bearer, login
from tests.incidents.conftest import handle, workflow_id_of
from tests.workflows import started


async def _exists(temporal_client, workflow_id: str) -> bool:
    try:
        await temporal_client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


class Watch:
    """Samples the tenant's slots, its running workflows and its incidents' starts still waiting;
    every sample must be within the limit."""

    def __init__(self, admin_sql, temporal_client, tenant) -> None:
        self.admin_sql, self.temporal_client, self.tenant = admin_sql, temporal_client, tenant
        self.most = 0

    async def sample(self) -> tuple[int, int]:
        slots, waiting = self.admin_sql.execute(
            "SELECT (SELECT count(*) FROM workflow_slots WHERE tenant_id = %(t)s), "
            "(SELECT count(*) FROM outbox WHERE tenant_id = %(t)s AND kind = 'start' "
            "AND workflow_type = 'IncidentWorkflow' AND delivered_at IS NULL)",
            {"t": self.tenant.id},
        ).fetchone()
        running = 0
        query = f'TenantId = "{self.tenant.slug}" AND ExecutionStatus = "Running"'
        async for _ in self.temporal_client.list_workflows(query):
            running += 1
        self.most = max(self.most, slots, running)
        return slots, waiting

    async def until(self, slots: int, waiting: int) -> None:
        for _ in range(1500):  # bounded: about a minute
            if await self.sample() == (slots, waiting):
                return
            await asyncio.sleep(0.04)
        raise AssertionError(f"never {slots} running and {waiting} waiting: {await self.sample()}")


async def test_at_most_the_limit_run_and_the_rest_start_as_room_frees(
    client,
    make_tenant,
    make_user,
    temporal_client,
    stack,
    settings,
    keys,
    admin_sql,
    worker,
    operator_headers,
):
    tenant = await make_tenant(tier="free")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    # Only workflows_in_flight is under test: let all six requests in at once.
    raised = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"concurrent_requests": 50},
        headers=operator_headers,
    )
    assert raised.status_code == 200, raised.text
    db = stack.database(pool_size=2)
    second = await build_relay(
        db, keys=keys, settings=settings, dsn=libpq_dsn(stack.app_url), admin_url=None
    )
    relaying = asyncio.create_task(second.run())  # two relays race for the same messages
    watch = Watch(admin_sql, temporal_client, tenant)
    try:
        created = await asyncio.gather(
            *(
                client.post(
                    "/v1/incidents",
                    json={"title": f"Fallo {i}", "description": "Sin servicio"},
                    headers=headers,
                )
                for i in range(6)
            )
        )
        assert [c.status_code for c in created] == [201] * 6
        numbers = sorted(c.json()["number"] for c in created)
        await watch.until(slots=2, waiting=4)
        alive = [n for n in numbers if await _exists(temporal_client, workflow_id_of(tenant, n))]
        assert len(alive) == 2
        queued = next(n for n in numbers if n not in alive)
        shown = (await client.get(f"/v1/incidents/{queued}/workflow", headers=headers)).json()
        assert shown["status"] == "queued"

        # One ends: the next one starts, and still no more than two run. (Its resolution is
        # learned: that ingestion counts too, and waits behind the incidents sent before it.)
        resolved = await client.post(
            f"/v1/incidents/{alive[0]}/resolve", json={"resolution": "Hecho."}, headers=headers
        )
        assert resolved.status_code == 202
        assert await asyncio.wait_for(handle(temporal_client, tenant, alive[0]).result(), 120) == (
            "resolved"
        )
        await watch.until(slots=2, waiting=3)

        # One is terminated (it never says so itself): its slot is found free all the same.
        await handle(temporal_client, tenant, alive[1]).terminate(reason="test")
        await watch.until(slots=2, waiting=2)
    finally:
        relaying.cancel()
        # Bounded, so that a relay slow to stop fails nothing here and hangs nothing either.
        await asyncio.wait({relaying}, timeout=30)
        await db.dispose()
    assert watch.most == 2
    running = [n for n in numbers if await _exists(temporal_client, workflow_id_of(tenant, n))]
    assert len(running) == 4  # two ended, two running, two still waiting
    await started(temporal_client, workflow_id_of(tenant, running[-1]))
