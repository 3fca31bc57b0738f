"""Backup, verify, restore and clone of one tenant of 20,000 chunks (with vectors), its documents
and users and the audit chain they wrote, on a temporary embedded PostgreSQL.

Measured: the backup (snapshot export, gzip, into the folder store), its verification, a restore
(the safety backup, then the one transaction that swaps the rows: the window during which the
tenant's writes wait), and a clone into a new tenant with every id renumbered.

Run from the repository root:  .venv/bin/python bench/backup.py
Options:                       --chunks 20000 --per-document 100 --users 50
Results: printed, and written to bench/results/backup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from common import (
    filled_tenant,
    machine,
    now_iso,
    server_version,
    table,
    temporary_stack,
    write_json,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tenantry.ops import restore as rows
from tenantry.ops import service as ops
from tenantry.ops.archive import Archive
from tenantry.ops.store import BackupStore
from tenantry.ops.verify import verify


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else 0.0


async def run(args) -> dict:
    with temporary_stack("backup") as stack, tempfile.TemporaryDirectory() as scratch:
        db = stack.database(pool_size=4)
        store = BackupStore(f"file://{scratch}/store")
        tenant = await filled_tenant(
            db,
            stack.settings,
            slug="bench-backup",
            users=args.users,
            chunks=args.chunks,
            per_document=args.per_document,
        )

        started = time.perf_counter()
        backup = await ops.take_backup(db, store, slug=tenant.slug, actor="bench")
        backup_s = time.perf_counter() - started
        path = await store.fetch(backup.archive, Path(scratch) / "archive.tar")
        raw_bytes = sum(
            len(line) + 1 for t in Archive.open(path).tables for line in Archive.open(path).lines(t)
        )

        started = time.perf_counter()
        report = verify(path)
        verify_s = time.perf_counter() - started
        assert report.ok, report.problems

        started = time.perf_counter()
        await ops.restore(db, store, path=path, slug=tenant.slug, actor="bench")
        restore_s = time.perf_counter() - started
        # The swap alone: the transaction that holds the tenant's row (its writes wait on it).
        archive = Archive.open(path)
        started = time.perf_counter()
        async with db.control() as session:
            swapped = await rows.replace(session, archive=archive, tenant_id=tenant.id)
        hold_s = time.perf_counter() - started

        started = time.perf_counter()
        await ops.clone(
            db, path=path, new_slug="bench-clone", actor="bench", settings=stack.settings
        )
        clone_s = time.perf_counter() - started
        await db.dispose()
        total_rows = backup.rows
        return {
            "when": now_iso(),
            "machine": machine(),
            "postgres": server_version(stack),
            "tenant": {"chunks": args.chunks, "users": args.users, "rows": total_rows},
            "archive_bytes": backup.bytes,
            "json_bytes": raw_bytes,
            "backup": {
                "seconds": round(backup_s, 2),
                "rows_per_s": rate(total_rows, backup_s),
                "archive_mb_per_s": round(backup.bytes / 1e6 / backup_s, 2),
                "json_mb_per_s": round(raw_bytes / 1e6 / backup_s, 2),
            },
            "verify_s": round(verify_s, 2),
            "restore": {
                "seconds_with_safety_backup": round(restore_s, 2),
                "swap_seconds_writes_wait": round(hold_s, 2),
                "rows_swapped": sum(swapped.values()),
                "rows_per_s": rate(sum(swapped.values()), hold_s),
                "json_mb_per_s": round(raw_bytes / 1e6 / hold_s, 2),
            },
            "clone": {"seconds": round(clone_s, 2), "rows_per_s": rate(total_rows, clone_s)},
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--per-document", type=int, default=100)
    parser.add_argument("--users", type=int, default=50)
    result = asyncio.run(run(parser.parse_args()))
    print(
        table(
            ["operation", "seconds", "rows/s"],
            [
                ["backup", result["backup"]["seconds"], result["backup"]["rows_per_s"]],
                ["verify", result["verify_s"], ""],
                [
                    "restore (with safety backup)",
                    result["restore"]["seconds_with_safety_backup"],
                    "",
                ],
                [
                    "restore swap (writes wait)",
                    result["restore"]["swap_seconds_writes_wait"],
                    result["restore"]["rows_per_s"],
                ],
                ["clone", result["clone"]["seconds"], result["clone"]["rows_per_s"]],
            ],
        )
    )
    print(
        f"archive {result['archive_bytes'] / 1e6:.1f} MB (JSON {result['json_bytes'] / 1e6:.1f} MB), rows {result['tenant']['rows']}"
    )
    print(f"written to {write_json('backup.json', result)}")


if __name__ == "__main__":
    main()
