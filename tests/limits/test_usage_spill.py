"""Usage counters are never lost: when the last flush fails (the database is down at shutdown),
they are spilled to a file under the home and added by the next process, exactly once."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from sqlalchemy.engine import make_url

from tenantry.app import create_app
from tenantry.db.base import utcnow
from tenantry.db.urls import libpq_dsn
from tenantry.limits.metering import UsageMeter


def _requests(admin_sql, tenant) -> int:
    row = admin_sql.execute(
        "SELECT coalesce(sum(value), 0) FROM usage_daily WHERE tenant_id = %s AND metric = 'x-spilled'",
        [tenant.id],
    ).fetchone()
    return int(row[0])


async def test_counts_survive_a_failed_last_flush_and_are_added_once(
    settings, db, make_tenant, admin_sql, tmp_path
):
    tenant = await make_tenant()
    unreachable = make_url("postgresql+psycopg://tenantry_app@/tenantry?host=/nonexistent")
    home = settings.model_copy(update={"home": tmp_path})
    app = create_app(home, database_url=unreachable)
    async with app.router.lifespan_context(app):
        app.state.meter.add(tenant.id, "x-spilled", 7)
        app.state.meter.add(tenant.id, "x-spilled", 4)
    # Shutdown could not write them: they wait in a file, not in a dead process's memory.
    spilled = list((tmp_path / "usage-spill").iterdir())
    assert len(spilled) == 1 and _requests(admin_sql, tenant) == 0

    # Two processes starting at once add the file once between them.
    first, second = UsageMeter(tmp_path / "usage-spill"), UsageMeter(tmp_path / "usage-spill")
    added = await asyncio.gather(first.recover(db), second.recover(db))
    assert sorted(added) == [0, 11]
    assert _requests(admin_sql, tenant) == 11
    assert list((tmp_path / "usage-spill").iterdir()) == []


def _counted(admin_sql, tenant, metric: str) -> int:
    row = admin_sql.execute(
        "SELECT coalesce(sum(value), 0) FROM usage_daily WHERE tenant_id = %s AND metric = %s",
        [tenant.id, metric],
    ).fetchone()
    return int(row[0])


async def _until_a_flush_waits_on_a_lock(admin_sql) -> None:
    """Polls the server until a session waits on a row lock of `usage_daily`."""
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'INSERT INTO usage_daily%%'"
    )
    for _ in range(1000):
        if admin_sql.execute(waiting).fetchone()[0]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the flush never waited on the held row")


async def test_a_flush_cancelled_half_way_keeps_exactly_what_it_did_not_write(
    db, stack, make_tenant, admin_sql, tmp_path
):
    written, held = await make_tenant(), await make_tenant()
    metric = "x-cancelled"
    meter = UsageMeter(tmp_path / "usage-spill")
    meter.add(written.id, metric, 3)  # written first: counters go tenant by tenant, in order
    meter.add(held.id, metric, 5)
    # Another transaction inserts `held`'s row and keeps it uncommitted: the flush waits on it.
    with psycopg.connect(libpq_dsn(stack.admin_url)) as holder:
        holder.execute(
            "INSERT INTO usage_daily (tenant_id, day, metric, value) VALUES (%s, %s, %s, 0)",
            [held.id, utcnow().date(), metric],
        )
        flushing = asyncio.create_task(meter.flush(db))
        await _until_a_flush_waits_on_a_lock(admin_sql)
        flushing.cancel()  # a shutdown, say
        with contextlib.suppress(asyncio.CancelledError):
            await flushing
        holder.rollback()
    assert _counted(admin_sql, written, metric) == 3

    await meter.close(db)  # the next flush writes what the cancelled one did not, and only that

    assert _counted(admin_sql, written, metric) == 3
    assert _counted(admin_sql, held, metric) == 5
    assert not (tmp_path / "usage-spill").exists()
