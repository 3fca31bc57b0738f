"""`tenantry backup …` end to end: create with a progress bar, list, verify, restore, clone."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.ops.store import BackupStore
from tenantry.settings import get_settings
from tests.conftest import unique_slug
from tests.ops.conftest import flip_byte

runner = CliRunner()


def cli(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def out(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_backup_verify_restore_and_clone_through_the_cli(stack, admin_sql, tmp_path):
    slug = unique_slug("cli")
    out(cli("tenants", "create", slug, "--name", "Aguas Fijo", "--tier", "standard"))
    out(
        cli(
            "users",
            "create",
            "--tenant",
            slug,
            "--email",
            "ana@example.com",
            "--role",
            "admin",
            "--password-stdin",
            input="Correct-Horse-42-Battery\n",
        )
    )

    backup = out(cli("backup", "create", slug))
    assert backup["status"] == "done" and backup["progress"]["users"] == 1
    listed = out(cli("backup", "list", slug))
    assert [b["id"] for b in listed["items"]] == [backup["id"]]

    report = out(cli("backup", "verify", backup["archive"]))
    assert report["ok"] and report["rows"]["users"] == 1

    # Replace: a user added after the backup is gone, the one in the archive is back.
    tenant_id = backup_tenant(admin_sql, slug)
    admin_sql.execute(
        "UPDATE users SET display_name = 'changed' WHERE tenant_id = %s", (tenant_id,)
    )
    restored = out(cli("backup", "restore", backup["archive"], "--tenant", slug))
    assert restored["mode"] == "replace" and restored["safety_backup"]
    names = admin_sql.execute(
        "SELECT display_name FROM users WHERE tenant_id = %s", (tenant_id,)
    ).fetchall()
    assert names and all(name != "changed" for (name,) in names)

    # Clone: a new tenant with the same user under a new id.
    clone = unique_slug("clone")
    cloned = out(cli("backup", "restore", backup["archive"], "--tenant", slug, "--as", clone))
    assert cloned["mode"] == "clone" and cloned["slug"] == clone
    for done in (restored, cloned):  # asked and finished in one go: never finished before asked
        assert datetime.fromisoformat(done["created_at"]) <= datetime.fromisoformat(
            done["finished_at"]
        )
    emails = admin_sql.execute(
        "SELECT u.email, u.id FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = %s",
        (clone,),
    ).fetchall()
    original = admin_sql.execute(
        "SELECT id FROM users WHERE tenant_id = %s", (tenant_id,)
    ).fetchone()
    assert [e for e, _ in emails] == ["ana@example.com"] and emails[0][1] != original[0]


def test_a_corrupted_archive_is_refused_with_its_file_named(stack, tmp_path):
    slug = unique_slug("cli")
    out(cli("tenants", "create", slug, "--name", "Roto", "--tier", "free"))
    backup = out(cli("backup", "create", slug))
    path = Path(tmp_path) / "copy.tar"
    store = BackupStore.of(get_settings())
    import asyncio

    asyncio.run(store.fetch(backup["archive"], path))
    flip_byte(path, "tables/audit_events.jsonl.gz", offset_in_member=30)

    result = cli("backup", "verify", str(path))
    assert result.exit_code == 1
    assert "tables/audit_events.jsonl.gz" in result.stderr
    refused = cli("backup", "restore", str(path), "--tenant", slug)
    assert refused.exit_code == 1 and "tables/audit_events.jsonl.gz" in refused.stderr


def test_an_archive_that_is_no_file_nor_store_key_is_named_without_a_traceback(stack):
    missing = uuid.uuid4().hex  # names no file here, whatever the working directory
    for archive in (f"{missing}/../../{missing}.tar", f"x\x01{missing}.tar", f"{missing}.tar"):
        for command in (
            ["backup", "verify", archive],
            ["backup", "restore", archive, "--tenant", "t"],
        ):
            result = cli(*command)
            assert result.exit_code == 1, (command, result.output)
            assert f"No archive '{archive}'" in result.stderr, (command, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit)


def backup_tenant(admin_sql, slug: str):
    return admin_sql.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()[0]
