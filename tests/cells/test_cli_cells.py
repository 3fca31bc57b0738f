"""`tenantry config …` and `tenantry users create` for a tenant placed in another cell: the
versions and the user are written in its cell, none on the control plane."""

from __future__ import annotations

from tests.cells.conftest import cell_admin_url, count_rows
from tests.cells.test_cli import out


def test_config_and_users_commands_work_for_a_tenant_in_another_cell(
    stack, admin_sql, cell_b, make_tenant_sync
):
    slug = make_tenant_sync()
    tenant_id = admin_sql.execute("SELECT id FROM tenants WHERE slug = %s", [slug]).fetchone()[0]
    assert out("tenants", "move", slug, "--cell", cell_b)["status"] == "done"
    main, cell = stack.admin_url, cell_admin_url(stack, cell_b)

    changed = out("config", "set", slug, "branding.primary_color=#112233")
    assert changed["version"] == 1
    shown = out("config", "show", slug)
    assert shown["config"]["branding"]["primary_color"] == "#112233"
    assert shown["sources"]["branding.primary_color"] == "tenant"
    assert [v["version"] for v in out("config", "history", slug)["items"]] == [1]
    assert out("config", "diff", slug, "0", "1") != {}
    assert out("config", "rollback", slug, "0")["version"] == 2
    assert count_rows(cell, "config_versions", tenant_id) == 2
    assert count_rows(main, "config_versions", tenant_id) == 0

    user = out(
        "users", "create", "--tenant", slug, "--email", "ana@example.com", "--role", "owner",
        "--password-stdin", input="Correct-Horse-42-Battery\n",
    )  # fmt: skip
    assert user["email"] == "ana@example.com"
    assert count_rows(cell, "users", tenant_id) == 1
    assert count_rows(main, "users", tenant_id) == 0
