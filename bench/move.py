"""Moving one tenant of 20,000 chunks (with vectors), its documents, users and audit chain to
another cell and back, on a temporary embedded PostgreSQL whose second database is the cell.

Measured for each direction: the copy (from a snapshot, while the tenant serves), and the write
hold (the writes in flight drain, the rows changed since the copy are carried over, the
placement switches). While the copy runs, a writer keeps adding incidents to the tenant, so the
hold has changes to carry over, as it would in production. `full_recopy_s` is what holding the
writes for a second complete copy would have cost instead (the alternative the move rejects).

Run from the repository root:  .venv/bin/python bench/move.py
Options:                       --chunks 20000 --per-document 100 --users 50
Results: printed, and written to bench/results/move.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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

from tenantry.errors import TenantMoving
from tenantry.incidents import service as incidents
from tenantry.incidents.schemas import IncidentCreate
from tenantry.ops import moves
from tenantry.ops.move import begun, sync
from tenantry.tenants import cells
from tenantry.tenants import service as tenants


async def keep_writing(db, tenant, stop: asyncio.Event) -> int:
    written = 0
    while not stop.is_set():
        try:
            async with db.tenant(tenant.id) as session:
                await incidents.create(
                    session,
                    tenant_id=tenant.id,
                    data=IncidentCreate(title=f"load {written}", description="bench"),
                    reporter="bench",
                )
            written += 1
        except TenantMoving:  # a write held by the move: try again
            await asyncio.sleep(0.01)
    return written


async def move_once(db, stack, tenant, cell: str) -> dict:
    async with db.control() as session:
        fresh = await tenants.get(session, slug=tenant.slug)
        move = await moves.new_move(
            session, tenant=fresh, cell=cell, actor="bench", settings=stack.settings
        )
    stop = asyncio.Event()
    writer = asyncio.create_task(keep_writing(db, tenant, stop))
    started = time.perf_counter()
    done = await moves.run_move(db, move_id=move.id, admin_url=stack.admin_url)
    total_s = time.perf_counter() - started
    stop.set()
    written = await writer
    return {
        "to": cell,
        "rows": done.rows,
        "copy_s": round(done.copy_ms / 1000, 2),
        "hold_ms": done.hold_ms,
        "total_s": round(total_s, 2),
        "rows_per_s": round(done.rows / (done.copy_ms / 1000), 1),
        "writes_during_move": written,
    }


async def full_recopy(db, tenant, cell: str) -> float:
    """A second full copy into an empty target: the hold a recopy-under-hold would need."""
    source = await db.cells.named(db.cells.main.name)
    target = await db.cells.named(cell)
    await moves.place_row(db.cells.main, target, tenant.id, placed=source.name)
    started = time.perf_counter()
    async with (
        begun(source.engine, tenant.id, snapshot=True) as src,
        begun(target.engine, tenant.id) as dst,
    ):
        await sync(src, dst, tenant_id=tenant.id)
        elapsed = time.perf_counter() - started
        raise _Undo(elapsed)


class _Undo(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


async def run(args) -> dict:
    with temporary_stack("move") as stack:
        db = stack.database(pool_size=4)
        location = cells.check(stack.settings, name="silo", database="tenantry_silo", url_env=None)
        cells.provision(stack.settings, stack.admin_url, location)
        async with db.control() as session:
            await cells.register(session, name="silo", location=location)
        tenant = await filled_tenant(
            db,
            stack.settings,
            slug="bench-move",
            users=args.users,
            chunks=args.chunks,
            per_document=args.per_document,
        )
        try:
            await full_recopy(db, tenant, "silo")
        except _Undo as undone:  # rolled back: the target stays empty for the real move
            recopy_s = undone.seconds
        there = await move_once(db, stack, tenant, "silo")
        back = await move_once(db, stack, tenant, stack.settings.cell)
        await db.dispose()
        return {
            "when": now_iso(),
            "machine": machine(),
            "postgres": server_version(stack),
            "tenant": {"chunks": args.chunks, "users": args.users},
            "full_recopy_s": round(recopy_s, 2),
            "moves": [there, back],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--per-document", type=int, default=100)
    parser.add_argument("--users", type=int, default=50)
    result = asyncio.run(run(parser.parse_args()))
    print(
        table(
            ["move", "rows", "copy s", "rows/s", "hold ms", "writes during"],
            [
                [
                    f"to {m['to']}",
                    m["rows"],
                    m["copy_s"],
                    m["rows_per_s"],
                    m["hold_ms"],
                    m["writes_during_move"],
                ]
                for m in result["moves"]
            ],
        )
    )
    print(f"a full recopy under the hold would hold writes {result['full_recopy_s']} s")
    print(f"written to {write_json('move.json', result)}")


if __name__ == "__main__":
    main()
