"""A search's planner settings ride in its transaction's first round trip, and end with it."""

from __future__ import annotations

from sqlalchemy import event, text

from tenantry.knowledge import search as retrieval

SHOW = text(
    "SELECT current_setting('plan_cache_mode'), current_setting('hnsw.iterative_scan', true), "
    "current_setting('hnsw.ef_search', true)"
)


async def test_vector_settings_are_set_with_the_tenant_and_cost_no_statement(stack, make_tenant):
    tenant = await make_tenant()
    db = stack.database(pool_size=1)
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        async with db.tenant(tenant.id, local_settings=retrieval.VECTOR_SETTINGS) as session:
            await retrieval.tune_for_vectors(session)
            assert statements == []  # already set: nothing sent
            tuned = (await session.execute(SHOW)).one()
        assert tuned == ("force_custom_plan", "relaxed_order", "100")
        async with db.tenant(tenant.id) as session:
            plain = (await session.execute(SHOW)).one()
            assert plain[0] == "auto" and plain[2] != "100"  # local to the transaction
            await retrieval.tune_for_vectors(session)  # one statement, not three
            assert (await session.execute(SHOW)).one() == tuned
        assert sum("set_config" in s for s in statements) == 1
    finally:
        await db.dispose()
