"""Retention: the rule as a pure function, and one real prune of the store and the records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tenantry.ops import service as ops
from tenantry.ops.models import Backup
from tenantry.ops.retention import Kept, expired, prune

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def kept(age: timedelta, kind="scheduled", cadence="daily", status="done") -> Kept:
    return Kept(uuid.uuid4(), NOW - age, kind, cadence, status)


def test_each_cadence_is_kept_for_its_retention():
    young_hourly = kept(timedelta(hours=23), cadence="hourly")
    old_hourly = kept(timedelta(hours=25), cadence="hourly")
    daily_29 = kept(timedelta(days=29))
    daily_31 = kept(timedelta(days=31))
    weekly_11 = kept(timedelta(weeks=11), cadence="weekly")
    weekly_13 = kept(timedelta(weeks=13), cadence="weekly")
    monthly_11 = kept(timedelta(days=330), cadence="monthly")
    monthly_13 = kept(timedelta(days=400), cadence="monthly")
    manual_old = kept(timedelta(days=900), kind="manual", cadence=None)
    safety_old = kept(timedelta(days=40), kind="safety", cadence=None)
    failed = kept(timedelta(minutes=5), status="failed")
    running = kept(timedelta(days=90), status="running")
    gone = expired(
        [
            young_hourly, old_hourly, daily_29, daily_31, weekly_11, weekly_13,
            monthly_11, monthly_13, manual_old, safety_old, failed, running,
        ],
        now=NOW,
    )  # fmt: skip
    assert set(gone) == {old_hourly, daily_31, weekly_13, monthly_13, safety_old, failed}


def test_the_newest_finished_backup_is_never_pruned():
    only = kept(timedelta(days=400), cadence="daily")
    assert expired([only], now=NOW) == []
    newer = kept(timedelta(days=300), cadence="daily")
    assert expired([only, newer], now=NOW) == [only]


async def test_prune_deletes_the_archive_and_marks_the_record(make_tenant, db, store):
    tenant = await make_tenant()
    old = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    new = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    async with db.control() as session:  # the first was a daily one, 31 days ago
        await session.execute(
            update(Backup)
            .where(Backup.id == old.id)
            .values(
                kind="scheduled", cadence="daily", created_at=Backup.created_at - timedelta(days=31)
            )
        )
    assert sorted(await store.keys(tenant.slug)) == sorted([old.archive, new.archive])
    dry = await prune(db, store, slug=tenant.slug, dry_run=True)
    assert dry["pruned"] == [str(old.id)] and len(await store.keys(tenant.slug)) == 2
    done = await prune(db, store, slug=tenant.slug)
    assert done["pruned"] == [str(old.id)]
    assert await store.keys(tenant.slug) == [new.archive]
    async with db.control() as session:
        record = await session.get(Backup, old.id)
    assert record.status == "pruned" and record.pruned_at is not None
    assert (await prune(db, store, slug=tenant.slug))["pruned"] == []
