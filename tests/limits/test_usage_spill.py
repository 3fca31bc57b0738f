"""Usage counters are never lost: when the last flush fails (the database is down at shutdown),
they are spilled to a file under the home and added by the next process, exactly once."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url

from tenantry.app import create_app
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
