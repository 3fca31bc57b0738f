"""Point-in-time recovery's costs: what archiving writes, how long a base backup and a recovery take.

Setup (all on this machine): a temporary embedded PostgreSQL archiving its WAL
(`TENANTRY_WAL_ARCHIVE`), a table of `--base-mb` MB written before the base backup and
`--wal-mb` MB more after it (rows of random text, so the WAL is not compressible), then the
time T, a WAL switch, and the wait until the archive holds that segment.

Measured, each as the real command in its own process (`python -m tenantry.cli pitr …`, so
Python's start and the stack's check are in the figures):
  base-backup   `pitr base-backup DEST` (pg_basebackup with a SHA-256 manifest + pg_verifybackup)
  recover       `pitr recover DEST --wal … --to T --into …` (copy, verify, replay, promote): RTO
                for the cluster part; exporting and restoring one tenant is `bench/backup.py`'s
  archive       bytes archived per MB written, and segments (16 MiB each)

Run from the repository root:  .venv/bin/python bench/pitr.py
Options:                       --base-mb 200 --wal-mb 200
Results: printed, and written to bench/results/pitr.json (other sizes: pitr_Bmb_Wmb.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from common import machine, now_iso, write_json
from tenantry.db.urls import libpq_dsn
from tenantry.settings import Settings
from tenantry.stack import start_database

ROW_BYTES = 1000


def fill(conn: psycopg.Connection, mb: int) -> None:
    rows = mb * 1_000_000 // ROW_BYTES
    conn.execute(
        "INSERT INTO pitr_filler (payload) SELECT string_agg(md5(random()::text), '') "
        "FROM generate_series(1, %s) AS r, generate_series(1, %s) AS part GROUP BY r",
        [rows, ROW_BYTES // 32],
    )


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def command(env: dict[str, str], *args: str) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tenantry.cli", "pitr", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pitr {args[0]} failed: {done.stderr}")
    return json.loads(done.stdout), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-mb", type=int, default=200)
    parser.add_argument("--wal-mb", type=int, default=200)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tenantry-bench-pitr-"))
    for name in [n for n in os.environ if n.startswith("TENANTRY_")]:
        del os.environ[name]
    settings = Settings(
        home=root / "home", wal_archive=root / "wal", environment="test", demo_tenants=False
    )
    stack = start_database(settings)
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": stack.admin_url,
        "TENANTRY_HOME": str(root / "home"),
        "TENANTRY_LOG_JSON": "false",
    }
    into = root / "recovered"
    try:
        with psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True) as conn:
            conn.execute("CREATE TABLE pitr_filler (id bigserial PRIMARY KEY, payload text)")
            fill(conn, args.base_mb)
            base_bytes_written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            taken, base_seconds = command(env, "base-backup", str(root / "base"))
            archived_before = folder_bytes(root / "wal")
            lsn_before = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            fill(conn, args.wal_mb)
            (point,) = conn.execute("SELECT now()").fetchone()
            # Recovery to T stops at the first commit after T: the archive must hold one.
            conn.execute("INSERT INTO pitr_filler (payload) VALUES ('after T')")
            lsn_after, segment = conn.execute(
                "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_switch_wal())"
            ).fetchone()
            wal_bytes = conn.execute(
                "SELECT pg_wal_lsn_diff(%s, %s)::bigint", [lsn_after, lsn_before]
            ).fetchone()[0]
            while not (root / "wal" / segment).is_file():
                time.sleep(0.1)  # the archiver's own pace; not part of the figures
            archived = folder_bytes(root / "wal") - archived_before
        recovered, recover_seconds = command(
            env, "recover", str(root / "base"), "--wal", str(root / "wal"),
            "--to", point.isoformat(), "--into", str(into), "--port", "5499",
        )  # fmt: skip
        command(env, "stop", str(into))
    finally:
        if (into / "postmaster.pid").exists():
            subprocess.run(
                [sys.executable, "-m", "tenantry.cli", "pitr", "stop", str(into)], env=env
            )
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)

    result = {
        "when": now_iso(),
        "machine": machine(),
        "base_mb_written": args.base_mb,
        "wal_mb_written": args.wal_mb,
        "base_backup": {
            "bytes": taken["bytes"],
            "seconds": round(base_seconds, 2),
            "mb_per_s": round(taken["bytes"] / 1e6 / base_seconds, 1),
        },
        "recover": {
            "wal_bytes_replayed": wal_bytes,
            "seconds": round(recover_seconds, 2),
            "wal_mb_per_s": round(wal_bytes / 1e6 / recover_seconds, 1),
            "last_replayed_commit": recovered["last_replayed_commit"],
        },
        "archive": {
            "bytes": archived,
            "segments": archived // (16 * 1024 * 1024),
            "bytes_per_mb_written": round(archived / args.wal_mb) if args.wal_mb else None,
        },
        "wal_position_before_base": str(base_bytes_written),
    }
    print(json.dumps(result, indent=2))
    default = (args.base_mb, args.wal_mb) == (200, 200)
    write_json("pitr.json" if default else f"pitr_{args.base_mb}mb_{args.wal_mb}mb.json", result)


if __name__ == "__main__":
    main()
