"""An operator moves a tenant to another cell from its console page, and follows the move."""

from __future__ import annotations

import re

from tests.cells.conftest import cell_admin_url, count_rows
from tests.console.helpers import console_client, make_operator, sign_in
from tests.workflows import started


async def test_an_operator_moves_a_tenant_from_its_page_and_sees_it_placed(
    app,
    stack,
    make_tenant,
    make_user,
    operator_headers,
    temporal_client,
    worker,
    cell_b,
    cell_silo,
):
    tenant = await make_tenant()
    await make_user(tenant, "member")
    email = await make_operator(app, operator_headers)
    async with console_client(app, 41) as c:
        csrf = await sign_in(c, email=email)
        page = await c.get(f"/console/admin/tenants/{tenant.slug}")
        assert 'id="moves"' in page.text and "Never moved" in page.text
        assert f"<option>{cell_b}</option>" in page.text  # a cell it can go to
        assert f'<option value="{cell_silo}">{cell_silo} (silo)</option>' in page.text
        # A cell nobody registered: the API's 422, shown in the page, and nothing recorded.
        refused = await c.post(
            f"/console/admin/tenants/{tenant.slug}/moves",
            data={"csrf_token": csrf, "cell": "nowhere"},
        )
        assert refused.status_code == 422 and "cell" in refused.text
        # A namespace of its own comes with a silo cell only.
        pool = await c.post(
            f"/console/admin/tenants/{tenant.slug}/moves",
            data={"csrf_token": csrf, "cell": cell_b, "namespace": "true"},
        )
        assert pool.status_code == 422 and "silo" in pool.text
        # A NUL in the tenant's name, the list's filters or a move's cell: no 500 anywhere.
        for path in ("cho%00gar", "cho%00gar/backups", "cho%00gar/health", "cho%00gar/deletion"):
            assert (await c.get(f"/console/admin/tenants/{path}")).status_code == 404
        for query in ("q=%00", "cell=%00"):
            listed = await c.get(f"/console/admin/tenants?{query}")
            assert listed.status_code == 200 and tenant.slug not in listed.text
        nul = await c.post(
            f"/console/admin/tenants/{tenant.slug}/moves",
            data={"csrf_token": csrf, "cell": "ma\x00in"},
        )
        assert nul.status_code == 422
        assert "Never moved" in (await c.get(f"/console/admin/tenants/{tenant.slug}/moves")).text

        requested = await c.post(
            f"/console/admin/tenants/{tenant.slug}/moves",
            data={"csrf_token": csrf, "cell": cell_b},
        )
        assert requested.status_code == 303, requested.text
        page = await c.get(f"/console/admin/tenants/{tenant.slug}")
        move_id = re.search(r'id="move-([0-9a-f-]{36})"', page.text).group(1)
        handle = await started(temporal_client, f"{tenant.slug}/move/{move_id}")
        await handle.result()
        fragment = await c.get(
            f"/console/admin/tenants/{tenant.slug}/moves", headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert 'class="status done"' in fragment.text and "hx-trigger" not in fragment.text
        assert f"<strong>{cell_b}</strong>" in fragment.text
        assert f"operator:{email}" in fragment.text
        # Now the way back is offered, and the rows are where the page says.
        assert "<option>main</option>" in fragment.text
    assert count_rows(cell_admin_url(stack, cell_b), "users", tenant.id) == 1
    assert count_rows(stack.admin_url, "users", tenant.id) == 0
