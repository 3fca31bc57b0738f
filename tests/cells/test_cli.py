"""`tenantry cells …` and `tenantry tenants move` end to end, in the CLI's own process."""

from __future__ import annotations

import json
import uuid

import psycopg
from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.db.urls import libpq_dsn
from tenantry.settings import get_settings
from tests.cells.conftest import cell_admin_url, count_rows
from tests.conftest import unique_slug

runner = CliRunner()


def out(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_cell_is_added_and_a_tenant_moved_there_and_back_through_the_cli(stack, admin_sql):
    name = f"c-{uuid.uuid4().hex[:8]}"
    added = out("cells", "add", name, "--database", name.replace("-", "_"))
    assert added == {
        "name": name,
        "database": name.replace("-", "_"),
        "url_env": None,
        "kind": "pool",
    }
    listed = out("cells", "list")
    settings = get_settings()  # the control plane's own database first, as the API lists it
    assert listed[0] == {
        "name": settings.cell,
        "database": settings.database_name,
        "url_env": None,
        "kind": "pool",
    }
    assert name in [c["name"] for c in listed[1:]]
    again = runner.invoke(app, ["cells", "add", name, "--database", "other_db"])
    assert again.exit_code == 1 and "already" in again.output

    slug = unique_slug("cli")
    out("tenants", "create", slug, "--name", "Cli", "--tier", "standard")
    out(
        "users", "create", "--tenant", slug, "--email", "ana@example.com", "--role", "admin",
        "--password-stdin", input="Correct-Horse-42-Battery\n",
    )  # fmt: skip
    tenant_id = admin_sql.execute("SELECT id FROM tenants WHERE slug = %s", [slug]).fetchone()[0]
    there = out("tenants", "move", slug, "--cell", name)
    assert (there["status"], there["source"], there["target"]) == ("done", "main", name)
    assert there["progress"]["users"] == 1 and there["hold_ms"] is not None
    assert out("tenants", "show", slug)["namespace"]["cell"] == name
    assert count_rows(stack.admin_url, "users", tenant_id) == 0

    back = out("tenants", "move", slug, "--cell", "main")
    assert (back["status"], back["target"]) == ("done", "main")
    assert count_rows(stack.admin_url, "users", tenant_id) == 1
    refused = runner.invoke(app, ["tenants", "move", slug, "--cell", "main"])
    assert refused.exit_code == 1 and "already in cell" in refused.output


def test_a_tenant_in_another_cell_is_suspended_resumed_and_deleted_through_the_cli(
    stack, admin_sql
):
    name = f"c-{uuid.uuid4().hex[:8]}"
    out("cells", "add", name, "--database", name.replace("-", "_"))
    cell = cell_admin_url(stack, name)
    slug = unique_slug("cli")
    out("tenants", "create", slug, "--name", "Cli", "--tier", "standard")
    out(
        "users", "create", "--tenant", slug, "--email", "ana@example.com", "--role", "admin",
        "--password-stdin", input="Correct-Horse-42-Battery\n",
    )  # fmt: skip
    tenant_id = admin_sql.execute("SELECT id FROM tenants WHERE slug = %s", [slug]).fetchone()[0]
    assert out("tenants", "move", slug, "--cell", name)["status"] == "done"

    assert out("tenants", "suspend", slug)["status"] == "suspended"
    with psycopg.connect(libpq_dsn(cell), autocommit=True) as conn:
        copy = conn.execute("SELECT status FROM tenants WHERE id = %s", [tenant_id]).fetchone()
        actions = [
            action
            for (action,) in conn.execute(
                "SELECT action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant_id]
            )
        ]
    assert copy[0] == "suspended" and actions[-1] == "tenant.suspended"
    assert out("tenants", "resume", slug)["status"] == "active"

    deleted = out("tenants", "delete", slug, "--yes")

    assert deleted["tenant"]["status"] == "deleted"
    assert deleted["purged_rows"]["users"] == 1
    # Its audit log too, by the owner role in its cell, once the deletion signed its head.
    assert deleted["purged_rows"]["audit_events"] >= len(actions) + 2
    assert count_rows(cell, "users", tenant_id) == 0
    assert count_rows(cell, "audit_events", tenant_id) == 0
    assert out("audit", "verify", slug)["deletion"]["purged"]["users"] == 1


def test_a_silo_cell_is_added_and_a_tenant_moved_there_gets_dedicated_workers_in_its_config(
    stack,
):
    name = f"s-{uuid.uuid4().hex[:8]}"
    added = out("cells", "add", name, "--database", name.replace("-", "_"), "--silo")
    assert added["kind"] == "silo"
    assert {c["name"]: c["kind"] for c in out("cells", "list")}[name] == "silo"

    slug = unique_slug("silo")
    out("tenants", "create", slug, "--name", "Silo", "--tier", "enterprise")
    there = out("tenants", "move", slug, "--cell", name)
    assert there["status"] == "done" and there["dedicated_workers"] is True
    # The move's version, in the tenant's cell, shown and listed as an operator's would be.
    shown = out("config", "show", slug)
    assert shown["config"]["features"]["dedicated_workers"] is True
    assert shown["sources"]["features.dedicated_workers"] == "tenant"
    latest = out("config", "history", slug)["items"][0]
    assert latest["author"] == f"move:{there['id']}"
    assert latest["version"] == shown["version"]

    # An operator may still choose otherwise afterwards; the next move decides again.
    out("config", "set", slug, "features.dedicated_workers=false")
    assert out("config", "show", slug)["config"]["features"]["dedicated_workers"] is False
    back = out("tenants", "move", slug, "--cell", "main")
    assert back["dedicated_workers"] is False
    history = out("config", "history", slug)["items"]
    assert history[0]["author"] != f"move:{back['id']}"  # already off: no version written
