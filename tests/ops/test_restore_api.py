"""`POST /v1/admin/tenants/{slug}/restores` and `/clones`: recorded, run by the worker's
`RestoreTenant` workflow through the outbox, followed at `GET …/restores/{id}`."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from tenantry.ops import service as ops
from tenantry.ops.archive import Archive
from tenantry.ops.export import export_tenant
from tenantry.ops.models import Backup, Restore
from tenantry.ops.tables import DATA, table_info
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant
from tests.conftest import bearer, login, unique_slug
from tests.incidents.conftest import handle, report, until_waiting, workflow_id_of
from tests.ops.conftest import data_rows, fetched, flip_byte
from tests.workflows import started

MISSING = "00000000-0000-4000-8000-000000000000"


def base(slug: str) -> str:
    return f"/v1/admin/tenants/{slug}"


async def finished(client, temporal_client, slug: str, record: dict, headers) -> dict:
    handle = await started(temporal_client, f"{slug}/restore/{record['id']}")
    await handle.result()
    shown = await client.get(f"{base(slug)}/restores/{record['id']}", headers=headers)
    assert shown.status_code == 200, shown.text
    return shown.json()


async def test_restore_through_the_api_runs_in_the_worker(
    client, filled, db, store, admin_sql, operator_headers, temporal_client, worker, tmp_path
):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    admin_sql.execute("DELETE FROM chunks WHERE tenant_id = %s", (tenant.id,))
    admin_sql.execute("UPDATE incidents SET title = 'changed' WHERE tenant_id = %s", (tenant.id,))

    asked = await client.post(
        f"{base(tenant.slug)}/restores",
        json={"backup_id": str(backup.id)},
        headers=operator_headers,
    )
    assert asked.status_code == 202, asked.text
    record = asked.json()
    assert record["status"] == "queued" and record["mode"] == "replace"
    assert record["backup_id"] == str(backup.id) and record["slug"] == tenant.slug

    done = await finished(client, temporal_client, tenant.slug, record, operator_headers)
    assert done["status"] == "done" and done["stage"] == "done", done
    assert done["progress"]["chunks"] == 12 and done["safety_backup"]
    # The tenant's rows are the archive's again.
    path = await fetched(store, backup.archive, tmp_path)
    now = tmp_path / "now.tar"
    await export_tenant(db, tenant=ops.source_of(tenant), into=now)
    assert data_rows(Archive.open(now)) == data_rows(Archive.open(path))
    async with db.control() as session:
        safety = await session.get(Backup, done["safety_backup"])
    assert safety.kind == "safety" and safety.status == "done"


async def test_a_restore_cancels_the_workflows_of_incidents_it_took_away(
    client, make_tenant, make_user, db, store, admin_sql, operator_headers, temporal_client, worker
):
    """An incident made after the archive is gone once restored: its workflow, waiting for an
    approval nobody can give, is cancelled and gives its workflows_in_flight slot back."""
    tenant = await make_tenant(tier="standard")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    kept = await report(client, headers)
    await until_waiting(temporal_client, tenant, kept["number"])
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    gone = await report(client, headers, title="Después de la copia")
    await until_waiting(temporal_client, tenant, gone["number"])

    asked = await client.post(
        f"{base(tenant.slug)}/restores",
        json={"backup_id": str(backup.id)},
        headers=operator_headers,
    )
    assert asked.status_code == 202, asked.text
    done = await finished(client, temporal_client, tenant.slug, asked.json(), operator_headers)
    assert done["status"] == "done", done

    with pytest.raises(WorkflowFailureError) as failure:
        await handle(temporal_client, tenant, gone["number"]).result()
    assert isinstance(failure.value.cause, CancelledError)
    # It gave its slot back before it ended; the kept incident's workflow still waits, and holds one.
    holders = admin_sql.execute(
        "SELECT workflow_id FROM workflow_slots WHERE tenant_id = %s", [tenant.id]
    ).fetchall()
    assert [h[0] for h in holders] == [workflow_id_of(tenant, kept["number"])]
    state = await handle(temporal_client, tenant, kept["number"]).query("state")
    assert state["status"] == "awaiting_approval"


async def test_clone_through_the_api_makes_a_new_tenant_with_new_ids(
    client, filled, db, store, operator_headers, temporal_client, worker, tmp_path
):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    new_slug = unique_slug("clone")
    asked = await client.post(
        f"{base(tenant.slug)}/clones",
        json={"backup_id": str(backup.id), "slug": new_slug, "name": "Copia"},
        headers=operator_headers,
    )
    assert asked.status_code == 202, asked.text
    record = asked.json()
    assert record["mode"] == "clone" and record["slug"] == new_slug
    done = await finished(client, temporal_client, tenant.slug, record, operator_headers)
    assert done["status"] == "done" and done["source_slug"] == tenant.slug, done

    async with db.control() as session:
        clone = await tenants.get(session, slug=new_slug)
    assert clone.name == "Copia" and clone.id != tenant.id
    source = Archive.open(await fetched(store, backup.archive, tmp_path))
    copied = tmp_path / "clone.tar"
    await export_tenant(db, tenant=ops.source_of(clone), into=copied)
    again = Archive.open(copied)
    # The same rows per table, and not one id of the source among the clone's.
    assert {t: len(r) for t, r in data_rows(again).items()} == {
        t: len(r) for t, r in data_rows(source).items()
    }
    async with db.control() as session:
        id_columns = {t: (await table_info(session, t)).id_columns for t in DATA}
    source_ids = {
        row[c] for t in DATA if t in source.tables for row in source.rows(t) for c in id_columns[t]
    }
    clone_ids = {
        row[c] for t in DATA if t in again.tables for row in again.rows(t) for c in id_columns[t]
    }
    assert source_ids and clone_ids and not source_ids & clone_ids
    assert done["progress"]["chunks"] == 12 == again.tables["chunks"]["rows"]


async def test_bad_restore_and_clone_requests_change_nothing(
    client, filled, make_tenant, db, store, operator_headers
):
    tenant, _ = filled
    other = await make_tenant()
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    foreign = await ops.take_backup(db, store, slug=other.slug, actor="test")
    restores, clones = f"{base(tenant.slug)}/restores", f"{base(tenant.slug)}/clones"

    async def problem(url, body, status):
        response = await client.post(url, json=body, headers=operator_headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return response.json()

    bad = await problem(restores, {"backup_id": "not-a-uuid"}, 422)
    assert "backup_id" in str(bad["errors"])
    assert "backup_id" in str((await problem(restores, {}, 422))["errors"])
    extra = await problem(restores, {"backup_id": str(backup.id), "x": 1}, 422)
    assert "x" in [e["field"].rsplit(".", 1)[-1] for e in extra["errors"]], extra
    await problem(restores, {"backup_id": MISSING}, 404)
    await problem(restores, {"backup_id": str(foreign.id)}, 404)  # another tenant's backup
    await problem(f"{base('no-such-tenant')}/restores", {"backup_id": str(backup.id)}, 404)

    bad_slug = await problem(clones, {"backup_id": str(backup.id), "slug": "No Way"}, 422)
    assert "slug" in str(bad_slug["errors"])
    taken = await problem(clones, {"backup_id": str(backup.id), "slug": other.slug}, 409)
    assert taken["type"].endswith("/tenant-exists")
    await problem(clones, {"backup_id": str(foreign.id), "slug": unique_slug("c")}, 404)
    await problem(clones, {"backup_id": MISSING, "slug": unique_slug("c")}, 404)
    unknown = await client.get(f"{restores}/{MISSING}", headers=operator_headers)
    assert unknown.status_code == 404

    async with db.control() as session:
        running = await ops.new_backup(session, tenant=tenant, actor="test")
    not_done = await problem(restores, {"backup_id": str(running.id)}, 409)
    assert not_done["type"].endswith("/backup-not-done")
    async with db.control() as session:
        records = (await session.scalars(select(Restore).where(Restore.tenant == tenant.id))).all()
        cloned = await session.scalar(select(Tenant).where(Tenant.slug == other.slug))
    assert records == [] and cloned.id == other.id


async def test_two_restores_at_once_one_runs_the_other_is_409(
    client, filled, db, store, operator_headers, temporal_client, worker
):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    # Suspended, the tenant's outbox holds the start: the first restore stays queued for sure.
    async with db.control() as session:
        await tenants.suspend(session, slug=tenant.slug, actor="test")
    url = f"{base(tenant.slug)}/restores"
    body = {"backup_id": str(backup.id)}
    clone_body = {**body, "slug": unique_slug("c")}
    answers = await asyncio.gather(
        client.post(url, json=body, headers=operator_headers),
        client.post(url, json=body, headers=operator_headers),
        client.post(f"{base(tenant.slug)}/clones", json=clone_body, headers=operator_headers),
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409], [a.text for a in answers]
    refused = [a.json() for a in answers if a.status_code == 409]
    assert {p["type"].rsplit("/", 1)[1] for p in refused} == {"restore-in-progress"}
    accepted = next(a.json() for a in answers if a.status_code == 202)

    async with db.control() as session:
        await tenants.resume(session, slug=tenant.slug, actor="test")
    done = await finished(client, temporal_client, tenant.slug, accepted, operator_headers)
    assert done["status"] == "done"
    # Once it is done, the tenant may be restored again.
    again = await client.post(url, json=body, headers=operator_headers)
    assert again.status_code == 202, again.text
    await finished(client, temporal_client, tenant.slug, again.json(), operator_headers)


async def test_writes_are_503_tenant_restoring_while_a_swap_runs(client, filled, db, store):
    tenant, headers = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    async with db.control() as session:
        swapping = Restore(
            tenant=tenant.id,
            slug=tenant.slug,
            mode="replace",
            archive=backup.archive,
            backup=backup.id,
            status="running",
            stage="swapping",
            progress={},
            requested_by="test",
        )
        session.add(swapping)
    webhook = {"url": "http://127.0.0.1:9/hold", "events": ["document.ready"]}
    held = await client.post("/v1/webhooks", json=webhook, headers=headers)
    assert held.status_code == 503, held.text
    assert held.json()["type"].endswith("/tenant-restoring")
    assert int(held.headers["Retry-After"]) > 0
    assert (await client.get("/v1/webhooks", headers=headers)).status_code == 200  # reads go on

    async with db.control() as session:
        (await session.get(Restore, swapping.id)).status = "done"
    after = await client.post("/v1/webhooks", json=webhook, headers=headers)
    assert after.status_code == 201, after.text


async def test_a_corrupt_archive_fails_the_restore_naming_the_file_and_changes_nothing(
    client, filled, db, store, settings, admin_sql, operator_headers, temporal_client, worker
):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    flip_byte(settings.home / "backups" / backup.archive, "tables/users.jsonl.gz")
    before = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s", (tenant.id,)
    ).fetchone()
    asked = await client.post(
        f"{base(tenant.slug)}/restores",
        json={"backup_id": str(backup.id)},
        headers=operator_headers,
    )
    assert asked.status_code == 202, asked.text
    record = asked.json()
    handle = await started(temporal_client, f"{tenant.slug}/restore/{record['id']}")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    shown = (
        await client.get(f"{base(tenant.slug)}/restores/{record['id']}", headers=operator_headers)
    ).json()
    assert shown["status"] == "failed" and "tables/users.jsonl.gz" in shown["error"], shown
    assert shown["safety_backup"] is None  # refused before anything was taken or changed
    after = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s", (tenant.id,)
    ).fetchone()
    assert after == before
    # Failed, it no longer holds the tenant: another restore may be asked for.
    again = await client.post(
        f"{base(tenant.slug)}/restores",
        json={"backup_id": str(backup.id)},
        headers=operator_headers,
    )
    assert again.status_code == 202, again.text
    second = await started(temporal_client, f"{tenant.slug}/restore/{again.json()['id']}")
    with pytest.raises(WorkflowFailureError):
        await second.result()
