"""Pooled connections are not pinged before use: one that the server has closed meanwhile (a
restart, an idle timeout) is found dead by the transaction's first round trip and replaced."""

from __future__ import annotations

from sqlalchemy import text

from tenantry.db.session import Database


async def _backend_pid(db: Database, tenant_id) -> int:
    async with db.tenant(tenant_id) as session:
        return await session.scalar(text("SELECT pg_backend_pid()"))


async def test_a_pooled_connection_closed_by_the_server_is_replaced(stack, admin_sql, make_tenant):
    tenant = await make_tenant()
    db = stack.database(pool_size=1)  # one pooled connection, so the next checkout reuses it
    try:
        first = await _backend_pid(db, tenant.id)
        # Waits (up to 5 s) until the backend has exited, so no sleep is needed.
        admin_sql.execute("SELECT pg_terminate_backend(%s, 5000)", [first])
        second = await _backend_pid(db, tenant.id)
        assert second != first

        admin_sql.execute("SELECT pg_terminate_backend(%s, 5000)", [second])
        rows = await db.run_once(tenant.id, "SELECT current_setting('tenantry.tenant_id')")
        assert rows == [(str(tenant.id),)]
    finally:
        await db.dispose()


async def test_the_tenant_of_a_one_round_trip_read_ends_with_it(stack, make_tenant):
    tenant = await make_tenant()
    db = stack.database(pool_size=1)
    try:
        rows = await db.run_once(tenant.id, "SELECT current_setting('tenantry.tenant_id')")
        assert rows == [(str(tenant.id),)]
        # The same pooled connection, next: no tenant left behind, no transaction left open.
        after = await db.run_once(None, "SELECT current_setting('tenantry.tenant_id', true)")
        assert after in ([("",)], [(None,)])
    finally:
        await db.dispose()
