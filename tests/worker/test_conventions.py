"""Temporal conventions: ids `{tenant}/{kind}/{id}`, the TenantId search attribute, fairness by
tenant and tier, the tenant in headers and in every activity's context, dedicated queues."""

from __future__ import annotations

import uuid

from temporalio.worker import Worker

from tenantry.tenancy.context import TenantRef
from tenantry.tenants.tiers import TIERS
from tenantry.worker.queues import TENANT_ID, start_tenant_workflow, task_queue_for
from tenantry.worker.runner import build_worker
from tests.conftest import bearer, login
from tests.knowledge.conftest import ingested
from tests.worker.probe import Probe, current_tenant_slug
from tests.workflows import started


async def test_the_tenant_reaches_the_activity_through_headers(temporal_client, make_tenant):
    tenant = await make_tenant(tier="enterprise")
    ref = TenantRef(tenant.id, tenant.slug, tenant.tier)
    queue = f"probe-{uuid.uuid4().hex[:8]}"  # a fresh task queue for this test
    async with Worker(
        temporal_client, task_queue=queue, workflows=[Probe], activities=[current_tenant_slug]
    ):
        handle = await start_tenant_workflow(
            temporal_client, "Probe", "x", tenant=ref, kind="probe", object_id="1", task_queue=queue
        )
        assert await handle.result() == tenant.slug
    assert handle.id == f"{tenant.slug}/probe/1"
    described = await handle.describe()
    assert described.typed_search_attributes.get(TENANT_ID) == tenant.slug
    priority = described.raw_description.workflow_execution_info.priority
    assert priority.fairness_key == tenant.slug
    assert priority.fairness_weight == TIERS["enterprise"].fairness_weight


def test_queues_follow_the_tenant_configuration():
    config = {"features": {"dedicated_workers": False}}
    assert task_queue_for("chogar", config, "pool") == "pool"
    config["features"]["dedicated_workers"] = True
    assert task_queue_for("chogar", config, "pool") == "tenant-chogar-jobs"


async def test_a_tenant_with_dedicated_workers_is_served_on_its_own_queue(
    client,
    make_tenant,
    make_user,
    temporal_client,
    stack,
    settings,
    embedder,
    worker,
    operator_config,
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    created = (
        await client.post(
            "/v1/documents", json={"title": "Solo", "text": "Cola dedicada."}, headers=headers
        )
    ).json()
    handle = await started(temporal_client, f"{tenant.slug}/ingest/{created['id']}")
    assert (await handle.describe()).task_queue == f"tenant-{tenant.slug}-jobs"
    db = stack.database(pool_size=2)
    try:
        dedicated = build_worker(
            temporal_client,
            task_queue=f"tenant-{tenant.slug}-jobs",
            db=db,
            embedder=embedder,
            settings=settings,
        )
        async with dedicated:
            assert await ingested(temporal_client, tenant, created["id"]) == "ready"
    finally:
        await db.dispose()
