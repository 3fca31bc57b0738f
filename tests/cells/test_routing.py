"""A tenant placed in another cell: its sessions, in the API and in the services, go there, its
rows live only there, and no other tenant's session sees them."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tenantry.ops import moves
from tenantry.tenants import service as tenants
from tests.cells.conftest import cell_admin_url, count_rows
from tests.conftest import bearer, login
from tests.ops.fill import add_chunks


async def moved(db, settings, tenant, cell: str) -> None:
    """Move `tenant` into `cell` in this process, as the CLI does (the workflow's activity)."""
    async with db.control() as session:
        current = await tenants.get(session, slug=tenant.slug)
        move = await moves.new_move(
            session, tenant=current, cell=cell, actor="test", settings=settings
        )
    done = await moves.run_move(db, move_id=move.id, admin_url=settings.database_url)
    assert done.status == "done", done.error


async def test_rows_of_a_tenant_in_another_cell_are_only_there(
    client, db, settings, stack, cell_b, make_tenant, make_user
):
    tenant, neighbour = await make_tenant(), await make_tenant()
    admin = await make_user(tenant, "admin")
    await add_chunks(db, tenant.id, documents=2, chunks_per_document=3)
    await add_chunks(db, neighbour.id, documents=1, chunks_per_document=2)

    await moved(db, settings, tenant, cell_b)

    main, cell = stack.admin_url, cell_admin_url(stack, cell_b)
    assert count_rows(main, "chunks", tenant.id) == 0
    assert count_rows(cell, "chunks", tenant.id) == 6
    assert count_rows(cell, "users", tenant.id) == 1
    assert count_rows(main, "chunks", neighbour.id) == 2
    assert count_rows(cell, "chunks", neighbour.id) == 0
    # The API finds the tenant's user and writes its new rows in the cell.
    headers = bearer((await login(client, tenant, admin))["access_token"])
    created = await client.post(
        "/v1/incidents", json={"title": "Disk full", "description": "db-1"}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert count_rows(cell, "incidents", tenant.id) == 1
    assert count_rows(main, "incidents", tenant.id) == 0
    # Another tenant's session sees none of it, in either cell.
    async with db.tenant(neighbour.id) as session:
        seen = await session.scalar(
            text("SELECT count(*) FROM chunks WHERE tenant_id = :t"), {"t": tenant.id}
        )
    assert seen == 0
    async with db.tenant(tenant.id) as session:
        assert await session.scalar(text("SELECT count(*) FROM chunks")) == 6


async def test_a_tenant_moves_back_to_the_main_cell(db, settings, stack, cell_b, make_tenant):
    tenant = await make_tenant()
    await add_chunks(db, tenant.id, documents=1, chunks_per_document=5)
    await moved(db, settings, tenant, cell_b)
    await moved(db, settings, tenant, settings.cell)

    assert count_rows(stack.admin_url, "chunks", tenant.id) == 5
    assert count_rows(cell_admin_url(stack, cell_b), "chunks", tenant.id) == 0
    async with db.tenant(tenant.id) as session:
        assert await session.scalar(text("SELECT count(*) FROM chunks")) == 5
        actions = (
            await session.scalars(
                text("SELECT action FROM audit_events WHERE action = 'tenant.moved'")
            )
        ).all()
    assert actions == ["tenant.moved", "tenant.moved"]


async def test_a_lifecycle_change_reaches_the_tenants_cell_on_the_relays_next_sweep(
    client, db, settings, cell_b, make_tenant, make_user, admin_sql, operator_headers
):
    from tenantry.tenants.cell_rows import SyncCellTenants

    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await moved(db, settings, tenant, cell_b)
    sync = SyncCellTenants(db)
    assert await sync() == 0  # the move left the cell's copy as the control plane has it

    # A change made to the control plane's row by other means than the lifecycle service
    # (by hand, say) still reaches the cell, on the chore's next sweep.
    admin_sql.execute("UPDATE tenants SET status = 'suspended' WHERE id = %s", [tenant.id])
    assert await sync() == 1
    answer = await client.post(
        "/v1/incidents", json={"title": "x", "description": "y"}, headers=headers
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"].endswith("tenant-suspended")
    async with db.tenant(tenant.id) as session:
        status, cell = (
            await session.execute(
                text("SELECT status, cell FROM tenants WHERE id = :t"), {"t": tenant.id}
            )
        ).one()
    assert (status, cell) == ("suspended", cell_b)


async def test_a_statement_refused_by_a_stale_cell_leaves_its_connection_usable(
    db, stack, settings, cell_b, make_tenant
):
    """A statement pipelined behind `tenantry_enter`'s refusal never runs, nor the preparation
    psycopg sends with it the time it reaches its prepare threshold; psycopg still records it
    as prepared. The connection must not go back to the pool so: the statement's next use there
    would fail with `prepared statement … does not exist` (a 500 on every request it served)."""
    placed, other = await make_tenant(), await make_tenant()
    await moved(db, settings, placed, cell_b)
    single = stack.database(pool_size=1)  # one connection to main: every use below is on it
    try:
        statement = f"SELECT count(*) FROM users /* {uuid.uuid4()} */"
        async with single.engine.connect() as conn:
            threshold = (await conn.get_raw_connection()).driver_connection.prepare_threshold
        for _ in range(threshold):  # the next execution prepares it
            assert await single.run_once(other.id, statement) == [(0,)]
        single.cells._placement[placed.id] = single.cells.main.name  # a stale placement

        assert await single.run_once(placed.id, statement) == [(0,)]  # refused, then its cell
        assert await single.run_once(other.id, statement) == [(0,)]  # main's connection again
    finally:
        await single.dispose()
