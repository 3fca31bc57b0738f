"""Backup schedules as Temporal Schedules, against the real dev server: each tier's set, kept in
step with the tenant's tier and status through the relay's chore, repaired by `sync`, and a
scheduled run that records, takes and prunes backups."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import exists, select
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from typer.testing import CliRunner

from tenantry.cli.main import app as cli_app
from tenantry.db.base import utcnow
from tenantry.ops import schedules
from tenantry.ops.models import Backup
from tenantry.ops.retention import CRON, TIER_CADENCES
from tenantry.outbox.models import ScheduleSync
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantUpdate
from tests.conftest import unique_slug

POLLS = 1500  # about 30 s


async def settled(db, tenant) -> None:
    """Once the tenant's schedule sync, written with its last change, has been carried out."""
    for _ in range(POLLS):
        async with db.control() as session:
            owed = await session.scalar(select(exists().where(ScheduleSync.tenant == tenant.id)))
        if not owed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the schedules of {tenant.slug} were never synced")


async def held(temporal_client, slug: str) -> dict[str, dict]:
    """The tenant's schedules as Temporal describes them, by cadence."""
    found = await schedules.list_schedules(temporal_client, slug=slug)
    return {s["id"].rsplit("/", 1)[1]: s for s in found}


async def test_each_tier_gets_its_cadences_as_schedules(
    db, make_tenant, temporal_client, settings, worker
):
    for tier, cadences in TIER_CADENCES.items():
        tenant = await make_tenant(tier=tier)
        await settled(db, tenant)
        found = await held(temporal_client, tenant.slug)
        assert set(found) == set(cadences), (tier, found)
        for cadence, schedule in found.items():
            assert schedule["cron"] == CRON[cadence]
            assert schedule["overlap"] == "skip"
            assert schedule["workflow"] == "BackupTenant"
            assert schedule["workflow_id"] == f"{tenant.slug}/backup/scheduled-{cadence}"
            assert schedule["task_queue"] == settings.pool_task_queue
            assert schedule["tenant_id_attribute"] == tenant.slug
            assert schedule["arg"] == {
                "tenant_id": str(tenant.id),
                "backup_id": None,
                "cadence": cadence,
            }
            assert not schedule["paused"] and schedule["next_runs"]
        # Seen raw too: the server holds the overlap policy and the cron we asked for.
        described = await temporal_client.get_schedule_handle(
            schedules.schedule_id(tenant.slug, cadences[0])
        ).describe()
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert schedules.cron_of(described.schedule.spec) == CRON[cadences[0]]


async def test_tier_change_suspension_and_deletion_follow_through_the_outbox(
    db, make_tenant, temporal_client, worker
):
    tenant = await make_tenant(tier="standard")
    await settled(db, tenant)
    assert set(await held(temporal_client, tenant.slug)) == {"daily", "weekly"}

    async with db.control() as session:
        await tenants.update(
            session, slug=tenant.slug, data=TenantUpdate(tier="enterprise"), actor="test"
        )
    await settled(db, tenant)
    assert set(await held(temporal_client, tenant.slug)) == set(CRON)

    async with db.control() as session:
        await tenants.update(session, slug=tenant.slug, data=TenantUpdate(tier="free"), actor="t")
    await settled(db, tenant)
    assert set(await held(temporal_client, tenant.slug)) == {"weekly"}

    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    await settled(db, tenant)
    assert [s["paused"] for s in (await held(temporal_client, tenant.slug)).values()] == [True]

    async with db.control() as session:
        await tenants.resume(session, slug=tenant.slug, actor="test")
    await settled(db, tenant)
    assert [s["paused"] for s in (await held(temporal_client, tenant.slug)).values()] == [False]

    await tenants.delete(db, slug=tenant.slug, actor="test")
    await settled(db, tenant)
    assert await held(temporal_client, tenant.slug) == {}


async def test_sync_repairs_missing_drifted_and_orphaned_schedules(
    db, make_tenant, temporal_client, settings, worker
):
    tenant = await make_tenant(tier="standard")
    await settled(db, tenant)
    daily = temporal_client.get_schedule_handle(schedules.schedule_id(tenant.slug, "daily"))
    weekly = temporal_client.get_schedule_handle(schedules.schedule_id(tenant.slug, "weekly"))
    await daily.delete()

    async def drift(given) -> ScheduleUpdate:
        schedule = given.description.schedule
        schedule.spec = ScheduleSpec(cron_expressions=["5 4 * * *"])
        return ScheduleUpdate(schedule=schedule)

    await weekly.update(drift)
    orphan = schedules.schedule_id(unique_slug("gone"), "daily")
    await temporal_client.create_schedule(
        orphan,
        Schedule(
            action=ScheduleActionStartWorkflow("BackupTenant", id="x", task_queue="nowhere"),
            spec=ScheduleSpec(intervals=[]),
        ),
    )
    assert set(await held(temporal_client, tenant.slug)) == {"weekly"}

    # Through the CLI, as an operator runs it (in a thread: it runs its own event loop).
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["backup", "schedules", "sync"])
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert schedules.schedule_id(tenant.slug, "daily") in done["created"]
    assert schedules.schedule_id(tenant.slug, "weekly") in done["updated"]
    assert orphan in done["deleted"]

    found = await held(temporal_client, tenant.slug)
    assert {c: s["cron"] for c, s in found.items()} == {c: CRON[c] for c in ("daily", "weekly")}
    assert await schedules.describe(temporal_client, orphan) is None
    # Idempotent: a second sync finds nothing of this tenant to do.
    again = await schedules.sync_all(db, temporal_client, settings)
    assert not {i for ids in (again["created"], again["updated"]) for i in ids} & {
        schedules.schedule_id(tenant.slug, c) for c in CRON
    }

    listed = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["backup", "schedules", "list", tenant.slug]
    )
    assert listed.exit_code == 0, listed.output
    assert [s["cron"] for s in json.loads(listed.stdout)] == [CRON["daily"], CRON["weekly"]]


async def test_a_scheduled_run_records_takes_and_prunes_backups(
    db, make_tenant, temporal_client, worker
):
    tenant = await make_tenant(tier="free")
    await settled(db, tenant)
    # A scheduled backup older than its retention: the run's pruning must take it.
    async with db.control() as session:
        old = Backup(
            tenant=tenant.id,
            slug=tenant.slug,
            kind="scheduled",
            cadence="weekly",
            status="done",
            archive=f"{tenant.slug}/old-{unique_slug()}.tar",
            progress={},
            requested_by="test",
            created_at=utcnow() - timedelta(weeks=20),
        )
        session.add(old)
    await temporal_client.get_schedule_handle(
        schedules.schedule_id(tenant.slug, "weekly")
    ).trigger()

    made = None
    for _ in range(POLLS * 2):
        async with db.control() as session:
            made = await session.scalar(
                select(Backup).where(
                    Backup.tenant == tenant.id, Backup.kind == "scheduled", Backup.id != old.id
                )
            )
            pruned = (await session.get(Backup, old.id)).status == "pruned"
        if made is not None and made.status == "done" and pruned:
            break
        await asyncio.sleep(0.02)
    assert made is not None and made.status == "done", made
    assert made.cadence == "weekly" and made.rows > 0
    assert made.requested_by.startswith(f"schedule:{tenant.slug}/backup/scheduled-weekly")
    assert pruned
    # The run carries the TenantId search attribute like every tenant workflow.
    runs = []
    for _ in range(POLLS):
        query = f'TenantId = "{tenant.slug}" AND WorkflowType = "BackupTenant"'
        runs = [w async for w in temporal_client.list_workflows(query)]
        if runs:
            break
        await asyncio.sleep(0.02)
    assert [r.id.startswith(f"{tenant.slug}/backup/scheduled-weekly") for r in runs] == [True]
