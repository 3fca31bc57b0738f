"""A point-in-time export of a tenant placed in another cell is taken from that cell's database:
from the control plane's it would be an empty archive, which a restore would make an empty tenant."""

from __future__ import annotations

import pytest

from tenantry.ops import pitr
from tests.cells.conftest import cell_admin_url
from tests.cells.test_moves import finished
from tests.workflows import started


async def test_export_of_a_tenant_in_another_cell_names_the_cell_and_its_database(
    app, client, stack, settings, make_tenant, make_user, operator_headers, temporal_client,
    worker, cell_b, tmp_path,
):  # fmt: skip
    tenant = await make_tenant()
    await make_user(tenant, "member")
    moved = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/moves", json={"cell": cell_b}, headers=operator_headers
    )
    assert moved.status_code == 202, moved.text
    await started(temporal_client, f"{tenant.slug}/move/{moved.json()['id']}")
    await finished(client, operator_headers, tenant.slug, moved.json()["id"])

    with pytest.raises(
        pitr.RecoveryRefused, match=f"cell {cell_b}.*database {cell_b.replace('-', '_')}"
    ):
        await pitr.export_at(
            stack.admin_url, slug=tenant.slug, into=tmp_path / "a.tar", settings=settings
        )
    assert not (tmp_path / "a.tar").exists()
    # From the cell's own database, the tenant's rows are all there.
    exported = await pitr.export_at(
        cell_admin_url(stack, cell_b), slug=tenant.slug, into=tmp_path / "b.tar", settings=settings
    )
    assert exported.manifest["tables"]["users"]["rows"] == 1
