"""A tenant's own Temporal namespace, where an operator asks for one (`features.own_namespace`,
with dedicated workers; or a move into a silo cell with `namespace`): its new workflows start in
`tenant-{slug}`, registered on first use with the `TenantId` search attribute; its dedicated worker
polls there; signals, cancels and the API's queries find a workflow in whichever namespace it
started; a deletion terminates its workflows there and deletes the namespace."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tenantry.config import service as config_service
from tenantry.errors import ValidationFailed
from tenantry.ops import moves
from tenantry.tenants import service as tenants
from tenantry.tenants.namespaces import dedicated_task_queue, tenant_namespace
from tenantry.worker.queues import TENANT_ID
from tests.cells.test_cli import app, out, runner
from tests.cells.test_silo import embedded_dedicated_workers
from tests.conftest import bearer, login
from tests.incidents.conftest import report, run_of, until_waiting, workflow_id_of
from tests.knowledge.conftest import ingested
from tests.worker.test_worker_restart import start_worker

OWN = {"features": {"dedicated_workers": True, "own_namespace": True}}


def namespace_client(temporal_client: Client, slug: str) -> Client:
    return Client(**{**temporal_client.config(), "namespace": tenant_namespace(slug)})


async def served_until(workers, key: tuple[str, str], *, serving: bool) -> None:
    """Sweep until (namespace, queue) is (or is no longer) served; bounded."""
    for _ in range(300):
        await workers.sweep()
        if (key in workers.served()) == serving:
            return
        await asyncio.sleep(0.05)  # pacing: Temporal's visibility catches up with a close
    raise AssertionError(f"{key} {'never' if serving else 'still'} served")


async def admin_headers(client, make_user, tenant) -> dict:
    return bearer((await login(client, tenant, await make_user(tenant, "admin")))["access_token"])


async def test_own_namespace_is_an_operators_choice_and_needs_dedicated_workers(
    client, make_tenant, make_user, operator_config
):
    tenant = await make_tenant()
    headers = await admin_headers(client, make_user, tenant)
    refused = await client.patch(
        "/v1/config", json={"features": {"own_namespace": True}}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["body.features.own_namespace"]

    with pytest.raises(ValidationFailed) as alone:
        await operator_config(tenant, {"features": {"own_namespace": True}})
    assert [e["field"] for e in alone.value.errors] == ["body.features.own_namespace"]
    assert "needs features.dedicated_workers" in alone.value.detail  # the reason, not only where
    assert (await client.get("/v1/config", headers=headers)).json()["version"] == 0
    assert (await operator_config(tenant, OWN)).version == 1


async def test_a_tenant_with_its_own_namespace_runs_its_workflows_there(
    client,
    stack,
    settings,
    make_tenant,
    make_user,
    operator_config,
    worker,
    temporal_client,
    embedder,
):
    tenant, neighbour = await make_tenant(tier="enterprise"), await make_tenant()
    headers = await admin_headers(client, make_user, tenant)
    await operator_config(tenant, OWN)
    own = namespace_client(temporal_client, tenant.slug)
    key = (tenant_namespace(tenant.slug), dedicated_task_queue(tenant.slug))
    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant
    ) as workers:
        await workers.sweep()
        assert workers.served() == [key]
        number = (await report(client, headers))["number"]
        state = await until_waiting(own, tenant, number)  # answered by its own worker, there
        assert state["status"] == "awaiting_approval"
        run = await run_of(own, tenant, number)
        described = await run.describe()
        assert described.task_queue == key[1] and described.namespace == key[0]
        with pytest.raises(RPCError) as elsewhere:
            await temporal_client.get_workflow_handle(run.id).describe()
        assert elsewhere.value.status == RPCStatusCode.NOT_FOUND

        # The API's query and the outbox's signal reach it there.
        asked = await client.get(f"/v1/incidents/{number}/workflow", headers=headers)
        assert asked.status_code == 200 and asked.json()["status"] == "awaiting_approval"
        resolving = await client.post(
            f"/v1/incidents/{number}/resolve", json={"resolution": "Reiniciada."}, headers=headers
        )
        assert resolving.status_code == 202, resolving.text
        assert await run.result() == "resolved"

        # Its namespace holds its own workflows only; the neighbour's stay in the platform's.
        neighbour_headers = await admin_headers(client, make_user, neighbour)
        other = (await report(client, neighbour_headers))["number"]
        await until_waiting(temporal_client, neighbour, other)
        listed = [w async for w in own.list_workflows("")]
        assert listed and {w.id.split("/")[0] for w in listed} == {tenant.slug}
        tags = {w.typed_search_attributes.get(TENANT_ID) for w in listed}
        assert tags == {tenant.slug}

        health = (await client.get("/health/detailed")).json()
        queues = {c["name"]: c for c in health["components"]}["workers"]["queues"]
        assert queues[key[1]]["namespace"] == key[0]
        assert queues[key[1]]["workflow"]["pollers"] >= 1


async def test_workflows_keep_the_namespace_they_started_in(
    client,
    stack,
    settings,
    make_tenant,
    make_user,
    operator_config,
    worker,
    temporal_client,
    embedder,
):
    """Turned on while a workflow waits in the platform's namespace: that one is still signalled
    and asked there, and served there until it ends; the next one starts in the tenant's own."""
    tenant = await make_tenant(tier="standard")
    headers = await admin_headers(client, make_user, tenant)
    queue = dedicated_task_queue(tenant.slug)
    platform_key, own_key = (
        (temporal_client.namespace, queue),
        (tenant_namespace(tenant.slug), queue),
    )
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant
    ) as workers:
        await workers.sweep()
        before = (await report(client, headers))["number"]
        await until_waiting(temporal_client, tenant, before)

        await operator_config(tenant, OWN)
        await workers.sweep()
        assert workers.served() == sorted([platform_key, own_key])
        own = namespace_client(temporal_client, tenant.slug)
        after = (await report(client, headers))["number"]
        await until_waiting(own, tenant, after)

        asked = await client.get(f"/v1/incidents/{before}/workflow", headers=headers)
        assert asked.status_code == 200 and asked.json()["status"] == "awaiting_approval"
        for number in (before, after):
            resolving = await client.post(
                f"/v1/incidents/{number}/resolve", json={"resolution": "Hecho."}, headers=headers
            )
            assert resolving.status_code == 202, resolving.text
        assert await (await run_of(temporal_client, tenant, before)).result() == "resolved"
        assert await (await run_of(own, tenant, after)).result() == "resolved"
        await served_until(workers, platform_key, serving=False)
        assert workers.served() == [own_key]
        # Nobody polls where the first one ran any more: its ended state is the incident's.
        shown = await client.get(f"/v1/incidents/{before}/workflow", headers=headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["status"] == "resolved" and shown.json()["waiting_for_person"] is False


async def test_a_move_into_a_silo_cell_may_give_the_tenant_its_own_namespace(
    client, db, settings, cell_silo, make_tenant, operator_headers
):
    tenant = await make_tenant(tier="enterprise")
    for loose in ("yes", "true", 1):  # strict JSON: only true or false
        asked = await client.post(
            f"/v1/admin/tenants/{tenant.slug}/moves",
            json={"cell": cell_silo, "namespace": loose},
            headers=operator_headers,
        )
        assert asked.status_code == 422, asked.text
        assert [e["field"] for e in asked.json()["errors"]] == ["body.namespace"]
    async with db.control() as session:
        current = await tenants.get(session, slug=tenant.slug)
        with pytest.raises(ValidationFailed) as pool:
            await moves.new_move(
                session,
                tenant=current,
                cell=settings.cell,
                actor="test",
                settings=settings,
                namespace=True,
            )
    assert [e["field"] for e in pool.value.errors] == ["namespace"]

    into = await moved(db, settings, tenant, cell_silo, namespace=True)
    assert (into.namespace_asked, into.dedicated_workers, into.own_namespace) == (True, True, True)
    assert await features_of(db, tenant) == (True, True)
    back = await moved(db, settings, tenant, settings.cell)
    assert (back.dedicated_workers, back.own_namespace) == (False, False)
    assert await features_of(db, tenant) == (False, False)


@pytest.mark.slow
async def test_an_external_worker_polls_in_the_tenants_own_namespace(
    client, make_tenant, make_user, operator_config, worker, temporal_client
):
    """`tenantry worker --tenant SLUG --own-namespace`, as the rendered Deployment runs it."""
    tenant = await make_tenant()
    headers = await admin_headers(client, make_user, tenant)
    await operator_config(tenant, OWN)
    namespace = tenant_namespace(tenant.slug)
    line = f"worker on task queue tenant-{tenant.slug}-jobs in namespace {namespace}"
    process = start_worker(tenant.slug, "--own-namespace", line=line)
    try:
        created = await client.post(
            "/v1/documents", json={"title": "Propio", "text": "Espacio propio."}, headers=headers
        )
        assert created.status_code == 202, created.text
        own = namespace_client(temporal_client, tenant.slug)
        assert await ingested(own, tenant, created.json()["id"]) == "ready"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_cli_moves_a_tenant_into_its_own_namespace(cell_b, cell_silo, make_tenant_sync):
    slug = make_tenant_sync()
    refused = runner.invoke(app, ["tenants", "move", slug, "--cell", cell_b, "--namespace"])
    assert refused.exit_code == 1 and "silo" in refused.stderr
    into = out("tenants", "move", slug, "--cell", cell_silo, "--namespace")
    assert (into["status"], into["namespace_asked"], into["own_namespace"]) == ("done", True, True)
    assert out("config", "show", slug)["config"]["features"]["own_namespace"] is True


async def test_a_deleted_tenants_namespace_is_emptied_and_deleted(
    client,
    stack,
    settings,
    make_tenant,
    make_user,
    operator_config,
    operator_headers,
    worker,
    temporal_client,
    embedder,
):
    tenant = await make_tenant()
    headers = await admin_headers(client, make_user, tenant)
    await operator_config(tenant, OWN)
    own = namespace_client(temporal_client, tenant.slug)
    key = (tenant_namespace(tenant.slug), dedicated_task_queue(tenant.slug))
    async with embedded_dedicated_workers(
        temporal_client, stack, settings, embedder, tenant
    ) as workers:
        await workers.sweep()
        number = (await report(client, headers))["number"]
        await until_waiting(own, tenant, number)
        deleted = await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=operator_headers)
        assert deleted.status_code == 200, deleted.text
        # The session worker's relay runs the deletion's clean-up (a chore).
        for _ in range(600):  # bounded: about 30 s
            try:
                await temporal_client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=key[0])
                )
            except RPCError as error:
                assert error.status == RPCStatusCode.NOT_FOUND
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the tenant's namespace was never deleted")
        with pytest.raises(RPCError):
            await own.get_workflow_handle(workflow_id_of(tenant, number)).describe()
        # Its worker is let go: the namespace and its workflows are gone, nothing to finish.
        await served_until(workers, key, serving=False)


async def moved(db, settings, tenant, cell: str, *, namespace: bool = False):
    async with db.control() as session:
        current = await tenants.get(session, slug=tenant.slug)
        move = await moves.new_move(
            session, tenant=current, cell=cell, actor="test", settings=settings, namespace=namespace
        )
    done = await moves.run_move(
        db, move_id=move.id, admin_url=settings.database_url, settings=settings
    )
    assert done.status == "done", done.error
    return done


async def features_of(db, tenant) -> tuple[bool, bool]:
    async with db.tenant(tenant.id) as session:
        features = (
            await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
        ).config["features"]
    return features["dedicated_workers"], features["own_namespace"]
