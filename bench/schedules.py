"""Backup schedules: what keeping every tenant's Temporal Schedules in step costs.

Setup (all on this machine): a temporary embedded PostgreSQL and Temporal dev server, and
`--tenants` tenants spread evenly over the three tiers (enterprise four schedules, standard two,
free one).

Measured:
  first sync   `sync_all` creating every tenant's schedules from none (what `tenantry backup
               schedules sync` and a worker's start do on a fresh Temporal)
  second sync  `sync_all` again, finding nothing to change (one describe per schedule)
  chore        one tenant's tier change: the relay's chore reconciling it (claim, read the
               tenant, describe, create/update/delete, remove the row), per tenant

Run from the repository root:  .venv/bin/python bench/schedules.py
Options:                       --tenants 90
Results: printed, and written to bench/results/schedules.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from common import machine, now_iso, temporary_stack, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tenantry.ops import schedules
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate, TenantUpdate
from tenantry.worker.client import connect
from tenantry.worker.devserver import TemporalDevServer
from tests.servers import free_port

TIERS = ("free", "standard", "enterprise")
NEXT_TIER = {"free": "standard", "standard": "enterprise", "enterprise": "free"}


async def run(args) -> dict:
    with temporary_stack("schedules") as stack:
        temporal = TemporalDevServer(stack.settings.home / "temporal", port=free_port())
        address = await temporal.start()
        db = stack.database(pool_size=4)
        try:
            client = await connect(address)
            made = []
            for n in range(args.tenants):
                async with db.control() as session:
                    made.append(
                        await tenants.create(
                            session,
                            data=TenantCreate(slug=f"bench-s{n}", name="B", tier=TIERS[n % 3]),
                            actor="bench",
                            settings=stack.settings,
                        )
                    )
            started = time.perf_counter()
            first = await schedules.sync_all(db, client, stack.settings)
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            second = await schedules.sync_all(db, client, stack.settings)
            second_s = time.perf_counter() - started

            chore = schedules.SyncSchedules(db, client, stack.settings)
            await chore()  # the rows the creations wrote were done by the first sync
            changed = made[: args.changes]
            for tenant in changed:
                async with db.control() as session:
                    await tenants.update(
                        session,
                        slug=tenant.slug,
                        data=TenantUpdate(tier=NEXT_TIER[tenant.tier]),
                        actor="bench",
                    )
            started = time.perf_counter()
            synced = await chore()
            chore_s = time.perf_counter() - started
        finally:
            await db.dispose()
            temporal.stop()
    created = len(first["created"])
    return {
        "benchmark": "schedules",
        "when": now_iso(),
        "machine": machine(),
        "tenants": args.tenants,
        "schedules": created,
        "first_sync_s": round(first_s, 2),
        "first_sync_ms_per_schedule": round(first_s * 1000 / max(1, created), 1),
        "second_sync_s": round(second_s, 2),
        "second_sync_changed": len(second["created"]) + len(second["updated"]),
        "chore_tenants": synced,
        "chore_ms_per_tenant": round(chore_s * 1000 / max(1, synced), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=90)
    parser.add_argument("--changes", type=int, default=30)
    result = asyncio.run(run(parser.parse_args()))
    for key, value in result.items():
        if key != "machine":
            print(f"{key:28} {value}")
    write_json("schedules.json", result)


if __name__ == "__main__":
    main()
