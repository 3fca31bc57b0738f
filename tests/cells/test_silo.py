"""A silo placement gives the tenant its own task queue and worker: a move into a silo cell turns
its dedicated workers on (a configuration version written by the move, audited), the worker
process starts a Temporal worker for `tenant-{slug}-jobs` and the tenant's next workflow runs
there; a move back to the main cell (a pool) turns them off and new work goes to the pool queue.
The worker process starts and stops a dedicated worker as configurations change, and keeps one
while a workflow that started on its queue still runs."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text

from tenantry.config import service as config_service
from tenantry.db.urls import libpq_dsn
from tenantry.ops import moves
from tenantry.ops.models import TenantMove
from tenantry.outbox.relay import Relay
from tenantry.runtime.dedicated_workers import DedicatedWorkers
from tenantry.runtime.stopping import cancel_within
from tenantry.tenants import service as tenants
from tenantry.tenants.dedicated import dedicated_placements, live_slugs
from tenantry.tenants.namespaces import dedicated_task_queue
from tenantry.worker.runner import build_worker
from tests.conftest import bearer, login
from tests.incidents.conftest import report, run_of, until_waiting
from tests.knowledge.conftest import ingested


@contextlib.asynccontextmanager
async def embedded_dedicated_workers(
    temporal_client, stack, settings, embedder, tenant, *, starting: bool = False
):
    """What a worker process runs beside its pool worker: the dedicated workers, swept by hand.
    Of the tenants with dedicated workers, the test's own (other tests' queues are theirs).
    `starting`: as a process that has just started (its first sweep looks for leftovers)."""
    db = stack.database(pool_size=4)

    async def wanted() -> dict[str, bool]:
        return {s: own for s, own in (await dedicated_placements(db)).items() if s == tenant.slug}

    async def live() -> list[str]:
        return [slug for slug in await live_slugs(db) if slug == tenant.slug]

    workers = DedicatedWorkers(
        temporal_client,
        wanted=wanted,
        live=live if starting else None,
        make_worker=lambda client, queue: build_worker(
            client, task_queue=queue, db=db, embedder=embedder, settings=settings
        ),
        every_seconds=settings.dedicated_sweep_seconds,
        stop_seconds=5,
    )
    try:
        yield workers
    finally:
        await workers.shutdown()
        await db.dispose()


@contextlib.asynccontextmanager
async def cell_relay(db, temporal_client, settings, cell_name: str):
    """The outbox relay of a cell, as a worker process runs one per registered cell."""
    cell = await db.cells.named(cell_name)
    relay = Relay(
        db.pinned(cell), temporal_client, dsn=libpq_dsn(cell.engine.url), settings=settings
    )
    task = asyncio.create_task(relay.run())
    await relay.listening.wait()
    try:
        yield relay
    finally:
        await cancel_within([task])


async def moved(db, settings, tenant, cell: str) -> TenantMove:
    """Move `tenant` into `cell` in this process, as the CLI does (the workflow's activity)."""
    async with db.control() as session:
        current = await tenants.get(session, slug=tenant.slug)
        move = await moves.new_move(
            session, tenant=current, cell=cell, actor="test", settings=settings
        )
    done = await moves.run_move(
        db, move_id=move.id, admin_url=settings.database_url, settings=settings
    )
    assert done.status == "done", done.error
    return done


async def add_document(client, headers, title: str) -> str:
    response = await client.post(
        "/v1/documents",
        json={"title": title, "text": f"{title}: reinicie el equipo y espere."},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def queue_of(temporal_client, workflow_id: str) -> str:
    return (await temporal_client.get_workflow_handle(workflow_id).describe()).task_queue


async def swept_until(workers: DedicatedWorkers, queue: str, *, serving: bool) -> None:
    """Sweep until the queue is (or is no longer) served; bounded."""
    for _ in range(300):
        await workers.sweep()
        if (queue in workers.queues()) == serving:
            return
        await asyncio.sleep(0.05)  # pacing: Temporal's visibility catches up with a close
    raise AssertionError(f"{queue} {'never' if serving else 'still'} served")


async def test_a_move_into_a_silo_cell_gives_the_tenant_its_own_queue_and_worker_and_back(
    client,
    db,
    settings,
    stack,
    cell_silo,
    make_tenant,
    make_user,
    worker,
    temporal_client,
    embedder,
):
    tenant = await make_tenant(tier="enterprise")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    queue = dedicated_task_queue(tenant.slug)

    into = await moved(db, settings, tenant, cell_silo)
    assert into.dedicated_workers is True
    async with db.tenant(tenant.id) as session:
        effective = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
        rows, _ = await config_service.list_versions(
            session, tenant_id=tenant.id, cursor=None, limit=5
        )
        events = (
            await session.execute(
                text(
                    "SELECT action, after FROM audit_events "
                    "WHERE action IN ('config.changed', 'tenant.moved') ORDER BY seq"
                )
            )
        ).all()
    assert effective.config["features"]["dedicated_workers"] is True
    assert (rows[0].author, rows[0].document) == (
        f"move:{into.id}",
        {"features": {"dedicated_workers": True}},
    )
    assert [action for action, _ in events] == ["config.changed", "tenant.moved"]
    assert events[0][1]["features.dedicated_workers"] is True
    assert events[0][1]["version"] == rows[0].version
    assert events[1][1]["dedicated_workers"] is True
    assert events[1][1]["config_version"] == rows[0].version

    async with (
        embedded_dedicated_workers(temporal_client, stack, settings, embedder, tenant) as workers,
        cell_relay(db, temporal_client, settings, cell_silo),
    ):
        await workers.sweep()
        assert queue in workers.queues()
        in_silo = await add_document(client, headers, "Caldera")
        assert await ingested(temporal_client, tenant, in_silo) == "ready"
        assert await queue_of(temporal_client, f"{tenant.slug}/ingest/{in_silo}") == queue
        # /health/detailed finds the silo tenant's configuration in its cell, and the poller.
        health = (await client.get("/health/detailed")).json()
        found = {c["name"]: c for c in health["components"]}["workers"]["queues"]
        assert found[queue]["shared"] is False and found[queue]["workflow"]["pollers"] >= 1

        back = await moved(db, settings, tenant, settings.cell)
        assert back.dedicated_workers is False
        async with db.tenant(tenant.id) as session:
            effective = await config_service.effective(
                session, tenant_id=tenant.id, tier=tenant.tier
            )
            rows, _ = await config_service.list_versions(
                session, tenant_id=tenant.id, cursor=None, limit=5
            )
        assert effective.config["features"]["dedicated_workers"] is False
        assert rows[0].author == f"move:{back.id}"
        in_pool = await add_document(client, headers, "Bomba")
        assert await ingested(temporal_client, tenant, in_pool) == "ready"
        pool_queue = await queue_of(temporal_client, f"{tenant.slug}/ingest/{in_pool}")
        assert pool_queue == settings.pool_task_queue
        await swept_until(workers, queue, serving=False)


async def test_a_second_run_of_a_finished_workers_step_writes_no_new_version(
    db, settings, cell_silo, make_tenant
):
    """The step is repeatable: a tenant whose configuration already says what the placement
    decides gets no new version (a retried activity writes nothing twice)."""
    from tenantry.ops.silo import place_workers
    from tenantry.tenants.cells import SILO

    tenant = await make_tenant()
    into = await moved(db, settings, tenant, cell_silo)
    for _ in range(2):
        async with db.tenant(tenant.id) as session:
            again = await place_workers(
                session,
                tenant=tenant,
                kind=SILO,
                move_id=into.id,
                actor="test",
                settings=settings,
            )
        assert (again.dedicated, again.config_version) == (True, None)
    async with db.tenant(tenant.id) as session:
        count = await session.scalar(text("SELECT count(*) FROM config_versions"))
    assert count == 1


async def test_the_worker_process_starts_and_stops_a_dedicated_worker_as_the_config_changes(
    client,
    settings,
    stack,
    make_tenant,
    make_user,
    operator_config,
    worker,
    temporal_client,
    embedder,
):
    tenant = await make_tenant(tier="standard")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    queue = dedicated_task_queue(tenant.slug)
    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant
    ) as workers:
        await workers.sweep()
        assert queue not in workers.queues()

        await operator_config(tenant, {"features": {"dedicated_workers": True}})
        await workers.sweep()
        assert queue in workers.queues()
        number = (await report(client, headers))["number"]
        await until_waiting(temporal_client, tenant, number)  # answered by the dedicated worker
        run = await run_of(temporal_client, tenant, number)
        assert (await run.describe()).task_queue == queue

        # Off again: the incident's workflow started on the dedicated queue and stays there, so
        # its worker stays until it ends.
        await operator_config(tenant, {"features": {"dedicated_workers": False}})
        await workers.sweep()
        assert queue in workers.queues()
        resolving = await client.post(
            f"/v1/incidents/{number}/resolve", json={"resolution": "Reiniciada."}, headers=headers
        )
        assert resolving.status_code == 202, resolving.text
        assert await run.result() == "resolved"
        await swept_until(workers, queue, serving=False)


async def test_a_started_worker_process_serves_a_queue_that_workflows_were_left_on(
    client,
    settings,
    stack,
    make_tenant,
    make_user,
    operator_config,
    worker,
    temporal_client,
    embedder,
):
    """A tenant that lost its dedicated workers while no process served its queue (the process
    ended): a process that starts finds its workflow still running there and finishes it."""
    tenant = await make_tenant(tier="standard")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    queue = dedicated_task_queue(tenant.slug)
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant
    ) as first:
        await first.sweep()
        number = (await report(client, headers))["number"]
        await until_waiting(temporal_client, tenant, number)
    await operator_config(tenant, {"features": {"dedicated_workers": False}})

    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant, starting=True
    ) as second:
        await second.sweep()
        assert queue in second.queues()
        resolving = await client.post(
            f"/v1/incidents/{number}/resolve", json={"resolution": "Reiniciada."}, headers=headers
        )
        assert resolving.status_code == 202, resolving.text
        run = await run_of(temporal_client, tenant, number)
        assert await run.result() == "resolved"
        await swept_until(second, queue, serving=False)


async def test_dedicated_tenants_are_found_in_every_cell(
    db, settings, stack, cell_silo, cell_b, make_tenant, operator_config
):
    """A silo tenant's configuration lives in its cell; a tenant that left a cell is not read
    from the copy it left behind."""
    silo, pool, plain = await make_tenant(), await make_tenant(), await make_tenant()
    await moved(db, settings, silo, cell_silo)
    await operator_config(pool, {"features": {"dedicated_workers": True}})
    await moved(db, settings, pool, cell_b)  # a pool cell: the placement takes them away
    found = await dedicated_placements(db)
    assert silo.slug in found
    assert pool.slug not in found and plain.slug not in found
    async with db.control() as session:
        decided = (
            await session.scalars(
                text("SELECT dedicated_workers FROM tenant_moves WHERE tenant = :t"),
                {"t": pool.id},
            )
        ).all()
    assert decided == [False]
