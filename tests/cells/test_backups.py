"""Backups, restores and clones asked through the API for a tenant placed in another cell: the
workflow starts through the tenant's outbox in its cell, and its rows are read and replaced
there."""

from __future__ import annotations

from sqlalchemy import text

from tenantry.ops import service as ops
from tenantry.tenants import service as tenants
from tests.cells.conftest import cell_admin_url, count_rows
from tests.cells.test_routing import moved
from tests.conftest import bearer, login, unique_slug
from tests.ops.fill import add_chunks
from tests.workflows import started


async def finished(client, temporal_client, tenant, kind: str, record: dict, headers) -> dict:
    handle = await started(temporal_client, f"{tenant.slug}/{kind}/{record['id']}")
    await handle.result()
    plural = {"backup": "backups", "restore": "restores"}[kind]
    shown = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/{plural}/{record['id']}", headers=headers
    )
    assert shown.status_code == 200, shown.text
    return shown.json()


async def test_a_backup_asked_through_the_api_is_taken_in_the_tenants_cell(
    client,
    db,
    settings,
    cell_b,
    cell_relays,
    make_tenant,
    operator_headers,
    temporal_client,
    worker,
):
    tenant = await make_tenant()
    await add_chunks(db, tenant.id, documents=2, chunks_per_document=3)
    await moved(db, settings, tenant, cell_b)
    base = f"/v1/admin/tenants/{tenant.slug}/backups"

    requested = await client.post(base, headers=operator_headers)

    assert requested.status_code == 202, requested.text
    shown = await finished(
        client, temporal_client, tenant, "backup", requested.json(), operator_headers
    )
    assert shown["status"] == "done" and shown["progress"]["chunks"] == 6, shown
    checked = await client.post(f"{base}/{shown['id']}/verify", headers=operator_headers)
    assert checked.status_code == 200 and checked.json()["ok"], checked.text


async def test_a_restore_asked_through_the_api_replaces_the_rows_in_the_tenants_cell(
    client,
    db,
    settings,
    stack,
    store,
    cell_b,
    cell_relays,
    make_tenant,
    operator_headers,
    temporal_client,
    worker,
):
    tenant = await make_tenant()
    await add_chunks(db, tenant.id, documents=2, chunks_per_document=3)
    await moved(db, settings, tenant, cell_b)
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    async with db.tenant(tenant.id) as session:
        await session.execute(text("DELETE FROM chunks WHERE tenant_id = :t"), {"t": tenant.id})

    asked = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/restores",
        json={"backup_id": str(backup.id)},
        headers=operator_headers,
    )

    assert asked.status_code == 202, asked.text
    done = await finished(
        client, temporal_client, tenant, "restore", asked.json(), operator_headers
    )
    assert done["status"] == "done" and done["progress"]["chunks"] == 6, done
    cell, main = cell_admin_url(stack, cell_b), stack.admin_url
    assert count_rows(cell, "chunks", tenant.id) == 6
    assert count_rows(main, "chunks", tenant.id) == 0
    async with db.tenant(tenant.id) as session:
        last = await session.scalar(text("SELECT action FROM audit_events ORDER BY seq DESC"))
    assert last == "tenant.restored"
    verified = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/audit/verify", headers=operator_headers
    )
    assert verified.json()["ok"] is True, verified.text


async def test_a_clone_of_a_tenant_in_another_cell_is_a_new_tenant_with_its_rows(
    client,
    db,
    settings,
    stack,
    store,
    cell_b,
    cell_relays,
    make_tenant,
    operator_headers,
    temporal_client,
    worker,
):
    tenant = await make_tenant()
    await add_chunks(db, tenant.id, documents=1, chunks_per_document=4)
    await moved(db, settings, tenant, cell_b)
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    new_slug = unique_slug("clone")

    asked = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/clones",
        json={"backup_id": str(backup.id), "slug": new_slug},
        headers=operator_headers,
    )

    assert asked.status_code == 202, asked.text
    done = await finished(
        client, temporal_client, tenant, "restore", asked.json(), operator_headers
    )
    assert done["status"] == "done", done
    async with db.control() as session:
        clone = await tenants.get(session, slug=new_slug)
    assert count_rows(stack.admin_url, "chunks", clone.id) == 4
    assert count_rows(cell_admin_url(stack, cell_b), "chunks", tenant.id) == 4


async def test_writes_of_a_tenant_in_another_cell_are_held_while_its_restore_swaps(
    client, db, settings, store, cell_b, make_tenant, make_user, tmp_path
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await add_chunks(db, tenant.id, documents=1, chunks_per_document=2)
    await moved(db, settings, tenant, cell_b)
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await store.fetch(backup.archive, tmp_path / "archive.tar")
    webhook = {"url": "http://127.0.0.1:9/hold", "events": ["document.ready"]}
    during: list[tuple[int, str, int]] = []

    async def in_the_swap(table: str, count: int) -> None:
        if not during:  # called inside the swap's transaction, once per table
            write = await client.post("/v1/webhooks", json=webhook, headers=headers)
            read = await client.get("/v1/webhooks", headers=headers)
            during.append((write.status_code, write.json().get("type", ""), read.status_code))

    await ops.restore(db, store, path=path, slug=tenant.slug, actor="test", progress=in_the_swap)

    write_status, problem, read_status = during[0]
    assert (write_status, read_status) == (503, 200)
    assert problem.endswith("/tenant-moving")
    after = await client.post("/v1/webhooks", json=webhook, headers=headers)
    assert after.status_code == 201, after.text
