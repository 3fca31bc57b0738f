"""The lifecycle through `tenantry tenants …`, against the same database as the API tests."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tenantry.cli.main import app
from tests.conftest import unique_slug

runner = CliRunner()


def cli(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def out(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_lifecycle_through_the_cli(stack, admin_sql):
    slug = unique_slug("cli")
    created = out(cli("tenants", "create", slug, "--name", "Aguas Fijo", "--tier", "standard"))
    assert (created["slug"], created["tier"], created["status"]) == (slug, "standard", "active")
    assert created["namespace"]["cache_prefix"] == f"tenantry:{slug}:"

    assert out(cli("tenants", "show", slug))["id"] == created["id"]
    listed = out(cli("tenants", "list", "--tier", "standard", "--limit", "500"))
    assert slug in {t["slug"] for t in listed["items"]}

    updated = out(cli("tenants", "update", slug, "--tier", "enterprise"))
    assert updated["tier"] == "enterprise"
    assert out(cli("tenants", "suspend", slug))["status"] == "suspended"
    assert out(cli("tenants", "resume", slug))["status"] == "active"

    verified = out(cli("audit", "verify", slug))
    assert verified["ok"] is True and verified["events"] == 4

    deleted = out(cli("tenants", "delete", slug, "--yes"))
    assert deleted["tenant"]["status"] == "deleted"
    assert deleted["purged_rows"]["audit_events"] == 5
    assert out(cli("tenants", "delete", slug, "--yes"))["purged_rows"] == {}
    row = admin_sql.execute("SELECT status FROM tenants WHERE slug = %s", [slug]).fetchone()
    assert row == ("deleted",)


def test_cli_bad_input_names_the_field_and_writes_nothing(stack, admin_sql):
    before = admin_sql.execute("SELECT count(*) FROM tenants").fetchone()[0]
    bad_slug = cli("tenants", "create", "Not_A_Slug", "--name", "x")
    assert bad_slug.exit_code == 2 and "slug" in bad_slug.stderr
    bad_tier = cli("tenants", "create", unique_slug(), "--name", "x", "--tier", "gold")
    assert bad_tier.exit_code == 2 and "tier" in bad_tier.stderr
    long_name = cli("tenants", "create", unique_slug(), "--name", "x" * 201)
    assert long_name.exit_code == 2 and "name" in long_name.stderr
    assert admin_sql.execute("SELECT count(*) FROM tenants").fetchone()[0] == before


def test_cli_duplicate_and_unknown(stack):
    slug = unique_slug("dup")
    out(cli("tenants", "create", slug, "--name", "First"))
    duplicate = cli("tenants", "create", slug, "--name", "Second")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr
    missing = cli("tenants", "show", "no-such-tenant")
    assert missing.exit_code == 1 and "no-such-tenant" in missing.stderr


def test_cli_delete_asks_for_confirmation(stack, admin_sql):
    slug = unique_slug("keep")
    out(cli("tenants", "create", slug, "--name", "Keep me"))
    refused = cli("tenants", "delete", slug, input="n\n")
    assert refused.exit_code == 1
    row = admin_sql.execute("SELECT status FROM tenants WHERE slug = %s", [slug]).fetchone()
    assert row == ("active",)
