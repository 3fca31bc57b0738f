"""Lifecycle changes of a tenant placed in another cell: the control plane's row changes in the
operator's transaction, and what the change owes the tenant's own rows (its audit chain, its
paused workflows, the cell's copy of its row) lands in its cell once, in order."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

import psycopg
from sqlalchemy import text

from tenantry.db.urls import libpq_dsn
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.cleanup import DeletionCleanup
from tenantry.tenants.schemas import TenantUpdate
from tests.cells.conftest import cell_admin_url, count_rows
from tests.cells.test_routing import moved
from tests.conftest import all_items, bearer, login
from tests.ops.fill import add_chunks


async def cell_copy(db, tenant_id) -> tuple[str, str, dict]:
    """The tenant's row as its own cell holds it: (status, tier, limit overrides)."""
    async with db.tenant(tenant_id) as session:
        row = (
            await session.execute(
                text("SELECT status, tier, limit_overrides FROM tenants WHERE id = :t"),
                {"t": tenant_id},
            )
        ).one()
    return tuple(row)


async def chain(db, tenant_id) -> list[str]:
    async with db.tenant(tenant_id) as session:
        return list(
            (
                await session.scalars(
                    text("SELECT action FROM audit_events ORDER BY seq"),
                )
            ).all()
        )


def owed(admin_sql, tenant_id) -> int:
    return admin_sql.execute(
        "SELECT count(*) FROM cell_changes WHERE tenant = %s", [tenant_id]
    ).fetchone()[0]


async def test_suspend_resume_and_tier_change_of_a_tenant_in_another_cell(
    client, db, settings, cell_b, make_tenant, make_user, operator_headers, admin_sql
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await moved(db, settings, tenant, cell_b)
    base = f"/v1/admin/tenants/{tenant.slug}"

    suspended = await client.post(f"{base}/suspend", headers=operator_headers)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    # Refused in its cell as soon as the operator is answered, as a tenant in main is.
    answer = await client.get("/v1/incidents", headers=headers)
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"].endswith("tenant-suspended")
    assert (await cell_copy(db, tenant.id))[0] == "suspended"

    resumed = await client.post(f"{base}/resume", headers=operator_headers)
    assert resumed.status_code == 200, resumed.text
    assert (await client.get("/v1/incidents", headers=headers)).status_code == 200

    changed = await client.patch(
        base, json={"tier": "enterprise", "name": "Renamed"}, headers=operator_headers
    )
    assert changed.status_code == 200, changed.text
    assert (await cell_copy(db, tenant.id))[:2] == ("active", "enterprise")

    limits = await client.patch(
        f"{base}/limits", json={"requests_per_minute": 77}, headers=operator_headers
    )
    assert limits.status_code == 200, limits.text
    assert (await cell_copy(db, tenant.id))[2] == {"requests_per_minute": 77}

    actions = await chain(db, tenant.id)
    assert actions[-4:] == [
        "tenant.suspended",
        "tenant.resumed",
        "tenant.updated",
        "tenant.limits_changed",
    ]
    # The chain lives in the cell only, and it verifies; nothing is left owed.
    main = admin_sql.execute(
        "SELECT count(*) FROM audit_events WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert main == 0
    verified = await client.get(f"{base}/audit/verify", headers=operator_headers)
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
    assert owed(admin_sql, tenant.id) == 0


async def test_a_resume_in_another_cell_resumes_the_workflows_paused_there(
    client, db, settings, stack, cell_b, make_tenant, operator_headers
):
    tenant = await make_tenant()
    await moved(db, settings, tenant, cell_b)
    base = f"/v1/admin/tenants/{tenant.slug}"
    assert (await client.post(f"{base}/suspend", headers=operator_headers)).status_code == 200
    async with db.tenant(tenant.id) as session:
        await session.execute(
            text(
                "INSERT INTO paused_workflows (tenant_id, workflow_id, paused_at) "
                "VALUES (:t, :w, clock_timestamp())"
            ),
            {"t": tenant.id, "w": f"{tenant.slug}/incident/1"},
        )

    assert (await client.post(f"{base}/resume", headers=operator_headers)).status_code == 200

    async with db.tenant(tenant.id) as session:
        paused = await session.scalar(text("SELECT count(*) FROM paused_workflows"))
        signals = (
            await session.scalars(
                text("SELECT workflow_id FROM outbox WHERE kind = 'signal' AND signal = 'resume'")
            )
        ).all()
    assert paused == 0
    assert signals == [f"{tenant.slug}/incident/1"]


async def test_an_owed_change_is_applied_once_however_many_appliers_run(
    db, settings, cell_b, make_tenant, admin_sql
):
    tenant = await make_tenant()
    await moved(db, settings, tenant, cell_b)
    before = await chain(db, tenant.id)
    # The change as the service makes it, without the caller's immediate apply: owed.
    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    async with db.control() as session:
        await tenants.update(
            session, slug=tenant.slug, data=TenantUpdate(name="Later"), actor="test"
        )

    await asyncio.gather(*(cell_changes.apply(db) for _ in range(4)))
    await cell_changes.ApplyCellChanges(db)()

    assert (await chain(db, tenant.id))[len(before) :] == ["tenant.suspended", "tenant.updated"]
    assert (await cell_copy(db, tenant.id))[0] == "suspended"
    assert owed(admin_sql, tenant.id) == 0


async def test_a_change_applied_in_the_cell_but_not_removed_here_is_not_applied_again(
    db, settings, cell_b, make_tenant, admin_sql
):
    tenant = await make_tenant()
    await moved(db, settings, tenant, cell_b)
    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    change = admin_sql.execute(
        "SELECT id, effect, payload FROM cell_changes WHERE tenant = %s", [tenant.id]
    ).fetchone()
    await cell_changes.apply(db, tenant_id=tenant.id)
    events = await chain(db, tenant.id)

    # As if the answer to the removal had been lost: the same change is owed again.
    admin_sql.execute(
        "INSERT INTO cell_changes (id, tenant, effect, payload) OVERRIDING SYSTEM VALUE "
        "VALUES (%s, %s, %s, %s)",
        [change[0], tenant.id, change[1], json.dumps(change[2])],
    )
    await cell_changes.apply(db, tenant_id=tenant.id)

    assert await chain(db, tenant.id) == events
    assert owed(admin_sql, tenant.id) == 0


async def test_a_tenant_whose_changes_fail_waits_and_the_others_go_on(
    db, settings, stack, cell_b, make_tenant, admin_sql
):
    broken, fine = await make_tenant(), await make_tenant()
    for tenant in (broken, fine):
        await moved(db, settings, tenant, cell_b)
    admin_sql.execute(
        "INSERT INTO cell_changes (tenant, effect, payload) VALUES (%s, 'no-such-effect', '{}')",
        [broken.id],
    )
    async with db.control() as session:
        await tenants.suspend(session, slug=fine.slug, actor="test")

    await cell_changes.ApplyCellChanges(db)()

    assert (await cell_copy(db, fine.id))[0] == "suspended"
    attempts, error, due_later = admin_sql.execute(
        "SELECT attempts, error, due_at > clock_timestamp() FROM cell_changes WHERE tenant = %s",
        [broken.id],
    ).fetchone()
    assert attempts >= 1 and "no-such-effect" in error and due_later
    # Nothing of the failed change was written in the cell.
    with psycopg.connect(libpq_dsn(cell_admin_url(stack, cell_b)), autocommit=True) as conn:
        marks = conn.execute(
            "SELECT count(*) FROM cell_changes_applied WHERE tenant_id = %s", [broken.id]
        ).fetchone()[0]
    assert marks == 0
    admin_sql.execute("DELETE FROM cell_changes WHERE tenant = %s", [broken.id])


async def test_parallel_suspends_and_resumes_leave_the_cell_and_the_chain_agreeing(
    client, db, settings, cell_b, make_tenant, operator_headers
):
    tenant = await make_tenant()
    await moved(db, settings, tenant, cell_b)
    base = f"/v1/admin/tenants/{tenant.slug}"
    before = len(await chain(db, tenant.id))

    answers = await asyncio.gather(
        *(
            client.post(f"{base}/{verb}", headers=operator_headers)
            for verb in ["suspend", "resume"] * 5
        )
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    await cell_changes.apply(db)

    async with db.control() as session:
        final = (await tenants.get(session, slug=tenant.slug)).status
    assert (await cell_copy(db, tenant.id))[0] == final
    events = (await chain(db, tenant.id))[before:]
    # Each event is a real transition, so they alternate, and the last one is the final state.
    assert all(a != b for a, b in pairwise(events))
    if events:
        assert events[-1] == {"suspended": "tenant.suspended", "active": "tenant.resumed"}[final]
    else:
        assert final == "active"
    verified = await client.get(f"{base}/audit/verify", headers=operator_headers)
    assert verified.json()["ok"] is True, verified.text


async def test_deleting_a_tenant_in_another_cell_purges_it_there_and_cleans_up_its_chain(
    client, db, settings, stack, cell_b, make_tenant, make_user, operator_headers, temporal_client
):
    tenant, neighbour = await make_tenant(), await make_tenant()
    for placed in (tenant, neighbour):
        await make_user(placed, "admin")
        await add_chunks(db, placed.id, documents=1, chunks_per_document=3)
        await moved(db, settings, placed, cell_b)
    cell = cell_admin_url(stack, cell_b)

    deleted = await client.delete(f"/v1/admin/tenants/{tenant.slug}", headers=operator_headers)

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"
    for table in ("users", "chunks", "documents", "tenant_keys", "cell_changes_applied"):
        assert count_rows(cell, table, tenant.id) == 0, table
    assert count_rows(cell, "chunks", neighbour.id) == 3
    assert (await cell_copy(db, tenant.id))[0] == "deleted"
    receipt = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/audit/verify", headers=operator_headers
    )
    purged = receipt.json()["deletion"]["purged"]
    assert purged["users"] == 1 and purged["chunks"] == 3, receipt.text
    # The clean-up (the relay's chore) purges its audit log in its cell, as the owner role.
    cleanup = DeletionCleanup(db, temporal_client, admin_url=stack.admin_url, keys=None)
    for _ in range(200):  # the session's worker may have claimed it first: wait for either
        await cleanup()
        if count_rows(cell, "audit_events", tenant.id) == 0:
            break
        await asyncio.sleep(0.05)
    assert count_rows(cell, "audit_events", tenant.id) == 0
    assert count_rows(cell, "audit_events", neighbour.id) > 0


async def test_owed_changes_name_no_tenant_but_their_own(db, settings, cell_b, make_tenant):
    """`cell_changes_applied` is tenant-owned: a neighbour's session sees none of its rows."""
    tenant, neighbour = await make_tenant(), await make_tenant()
    for placed in (tenant, neighbour):
        await moved(db, settings, placed, cell_b)
    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    await cell_changes.apply(db, tenant_id=tenant.id)
    async with db.tenant(tenant.id) as session:
        own = await session.scalar(text("SELECT count(*) FROM cell_changes_applied"))
    async with db.tenant(neighbour.id) as session:
        seen = await session.scalar(
            text("SELECT count(*) FROM cell_changes_applied WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
    assert own >= 1 and seen == 0


async def test_the_usage_export_counts_a_tenant_in_another_cell(
    client, db, settings, cell_b, make_tenant, make_user, operator_headers
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await moved(db, settings, tenant, cell_b)
    for _ in range(3):
        assert (await client.get("/v1/incidents", headers=headers)).status_code == 200

    rows = await all_items(client, "/v1/admin/usage", operator_headers, limit=200)

    counted = {row["metric"]: row["value"] for row in rows if row["tenant"] == tenant.slug}
    assert counted.get("requests", 0) >= 3, counted
