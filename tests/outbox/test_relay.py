"""The relay's delivery rules: a start delivered twice is one run, a signal for a workflow that
has ended is done (not retried), a tenant's messages stay under its RLS, and a suspended tenant's
messages wait until it is resumed."""

from __future__ import annotations

import asyncio
import uuid

from tenantry.knowledge.ingest_types import IngestInput
from tenantry.outbox import service as outbox
from tenantry.outbox.models import OutboxMessage
from tenantry.tenants import service as tenants
from tests.workflows import started


async def _outcomes(admin_sql, tenant, workflow_id: str, count: int) -> list[tuple]:
    for _ in range(1500):  # bounded: about 30 s
        rows = admin_sql.execute(
            "SELECT kind, outcome, attempts FROM outbox WHERE tenant_id = %s AND workflow_id = %s "
            "AND delivered_at IS NOT NULL ORDER BY seq",
            [tenant.id, workflow_id],
        ).fetchall()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id}: delivered {rows}")


async def test_a_start_delivered_twice_is_one_run(
    db, make_tenant, temporal_client, admin_sql, worker
):
    tenant = await make_tenant()
    workflow_id = f"{tenant.slug}/ingest/{uuid.uuid4()}"  # no such document: a short run
    job = IngestInput(str(tenant.id), tenant.slug, workflow_id.rsplit("/", 1)[1])
    for _ in range(2):  # as a relay that died after Temporal took it would leave it
        async with db.tenant(tenant.id) as session:
            await outbox.start(
                session,
                tenant_id=tenant.id,
                workflow_type="IngestDocument",
                workflow_id=workflow_id,
                arg=job,
                reuse="allow_duplicate_failed_only",
            )
    rows = await _outcomes(admin_sql, tenant, workflow_id, 2)
    assert rows[0] == ("start", "started", 0) and rows[1][1] in ("started", "already ran")
    assert await (await started(temporal_client, workflow_id)).result() == "deleted"
    runs = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    assert len(runs) == 1


async def test_a_signal_for_an_ended_workflow_is_done(db, make_tenant, admin_sql, worker):
    tenant = await make_tenant()
    workflow_id = f"{tenant.slug}/incident/{uuid.uuid4().hex}"
    async with db.tenant(tenant.id) as session:
        await outbox.signal(session, tenant_id=tenant.id, workflow_id=workflow_id, name="resume")
    assert await _outcomes(admin_sql, tenant, workflow_id, 1) == [("signal", "workflow closed", 0)]


async def test_messages_stay_with_their_tenant_and_wait_while_it_is_suspended(
    db, make_tenant, admin_sql, worker
):
    from sqlalchemy import func, select

    tenant, other = await make_tenant(), await make_tenant()
    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    workflow_id = f"{tenant.slug}/incident/{uuid.uuid4().hex}"
    async with db.tenant(tenant.id) as session:
        await outbox.signal(session, tenant_id=tenant.id, workflow_id=workflow_id, name="resume")
    async with db.tenant(other.id) as session:
        seen = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert seen == 0  # another tenant's transaction sees none of its messages
    async with db.control() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        due = (await session.scalars(select(func.outbox_due_tenants()))).all()
    assert tenant.id not in due  # suspended: not due
    assert await worker.relay.round(tenant.id) is False  # even when asked directly
    held = admin_sql.execute(
        "SELECT delivered_at, attempts FROM outbox WHERE workflow_id = %s", [workflow_id]
    ).fetchone()
    assert held == (None, 0)
    async with db.control() as session:
        await tenants.resume(session, slug=tenant.slug, actor="test")
    assert await _outcomes(admin_sql, tenant, workflow_id, 1) == [("signal", "workflow closed", 0)]
