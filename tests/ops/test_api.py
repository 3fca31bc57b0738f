"""`/v1/admin/tenants/{slug}/backups`: requested through the outbox, taken by the worker's
workflow, followed and verified over HTTP."""

from __future__ import annotations

from tests.ops.conftest import fetched
from tests.workflows import started


async def test_backup_requested_through_the_api_runs_in_the_worker(
    client, filled, operator_headers, temporal_client, worker, store, tmp_path
):
    tenant, _ = filled
    base = f"/v1/admin/tenants/{tenant.slug}/backups"
    requested = await client.post(base, headers=operator_headers)
    assert requested.status_code == 202, requested.text
    backup = requested.json()
    assert backup["status"] == "queued" and backup["kind"] == "manual"

    handle = await started(temporal_client, f"{tenant.slug}/backup/{backup['id']}")
    assert await handle.result() == "done"

    shown = (await client.get(f"{base}/{backup['id']}", headers=operator_headers)).json()
    assert shown["status"] == "done" and shown["bytes"] > 0
    assert shown["progress"]["chunks"] == 12 and shown["progress"]["users"] >= 2
    assert shown["rows"] == sum(shown["progress"].values())

    listed = (await client.get(base, headers=operator_headers)).json()
    assert backup["id"] in [b["id"] for b in listed["items"]]

    checked = await client.post(f"{base}/{backup['id']}/verify", headers=operator_headers)
    assert checked.status_code == 200 and checked.json()["ok"], checked.text

    # The archive in the store is the one the record describes.
    from tenantry.ops.verify import verify

    path = await fetched(store, shown["archive"], tmp_path)
    assert verify(path, manifest_sha256=shown["manifest_sha256"]).ok


async def test_backups_of_an_unknown_tenant_or_id_are_404(client, make_tenant, operator_headers):
    missing = await client.post(
        "/v1/admin/tenants/no-such-tenant/backups", headers=operator_headers
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    tenant = await make_tenant()
    unknown = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/backups/00000000-0000-4000-8000-000000000000",
        headers=operator_headers,
    )
    assert unknown.status_code == 404
    bad = await client.get(
        f"/v1/admin/tenants/{tenant.slug}/backups/not-a-uuid", headers=operator_headers
    )
    assert bad.status_code == 422
