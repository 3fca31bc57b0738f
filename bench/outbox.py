"""The outbox's delay: from a transaction's commit to its workflow's start in Temporal.

Setup (all on this machine): a temporary embedded PostgreSQL (`temporary_stack`), a Temporal dev
server (`TemporalDevServer`, SQLite in the temporary home, on a free port), `--tenants` standard
tenants, and the relay in a process of its own, measured twice:
  relay alone    `python -m tenantry.cli relay` (the relay a worker process runs, with no worker
                 polling the queue: the outbox and Temporal's start, nothing else);
  with workers   `python -m tenantry.cli worker` (the real command: the relay beside the Temporal
                 worker, which also runs every started workflow on the same cores).

Measured: each message is its own transaction in this process (`db.tenant(...)`, then
`outbox.service.start(...)` of an `IngestDocument` for a document that does not exist, so the
workflow itself costs almost nothing and the figure is the relay's), the wall clock read right
after the COMMIT returns; the delay is Temporal's own `start_time` of that workflow minus that
instant (one clock: the same machine). Two scenarios, tenants interleaved:
  steady  `--steady` messages at `--rate` a second;
  burst   `--burst` messages committed as fast as `--concurrency` writers can.
Also reported: the relay's own view (outbox `delivered_at - created_at`, from the row's insert).

Run from the repository root:  .venv/bin/python bench/outbox.py
Options:                       --tenants 10 --steady 200 --rate 20 --burst 200 --concurrency 16
Results: printed, and written to bench/results/outbox.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import (
    free_port,
    machine,
    now_iso,
    percentile,
    server_version,
    table,
    tail,
    temporary_stack,
    write_json,
)

TIMEOUT_S = 120.0


def ms(seconds: list[float]) -> dict[str, float]:
    values = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
        "n": len(values),
    }


async def seed(stack, settings, count: int) -> list:
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate

    db = stack.database()
    made = []
    try:
        for i in range(count):
            async with db.control() as session:
                made.append(
                    await tenants.create(
                        session,
                        data=TenantCreate(slug=f"outbox-{i:03d}", name=f"Outbox {i}"),
                        actor="bench",
                        settings=settings,
                    )
                )
    finally:
        await db.dispose()
    return made


async def send(db, tenant) -> tuple[str, float]:
    """One transaction that writes one outbox message; the instant its COMMIT returned."""
    from tenantry.knowledge.ingest_types import IngestInput
    from tenantry.knowledge.service import ingest_workflow_id
    from tenantry.outbox import service as outbox

    document_id = uuid.uuid4()
    workflow_id = ingest_workflow_id(tenant.slug, document_id)
    async with db.tenant(tenant.id) as session:
        await outbox.start(
            session,
            tenant_id=tenant.id,
            workflow_type="IngestDocument",
            workflow_id=workflow_id,
            arg=IngestInput(str(tenant.id), tenant.slug, str(document_id)),
        )
    return workflow_id, time.time()


async def steady(db, tenants, count: int, rate: float) -> list[tuple[str, float]]:
    sent, started = [], time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        sent.append(await send(db, tenants[i % len(tenants)]))
    return sent


async def burst(db, tenants, count: int, concurrency: int) -> list[tuple[str, float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int):
        async with gate:
            return await send(db, tenants[i % len(tenants)])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def delays(client, sent: list[tuple[str, float]]) -> list[float]:
    """Temporal's start time of each workflow minus its commit (waits until all started)."""
    from temporalio.service import RPCError

    found: dict[str, float] = {}
    deadline = time.monotonic() + TIMEOUT_S
    while len(found) < len(sent) and time.monotonic() < deadline:
        for workflow_id, committed in sent:
            if workflow_id in found:
                continue
            try:
                described = await client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                continue
            found[workflow_id] = described.start_time.timestamp() - committed
        await asyncio.sleep(0.2)
    if len(found) < len(sent):
        raise SystemExit(f"only {len(found)} of {len(sent)} workflows started in {TIMEOUT_S} s")
    return list(found.values())


def relay_view(stack) -> list[float]:
    from common import admin_connect

    with admin_connect(stack) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM delivered_at - created_at) FROM outbox "
            "WHERE delivered_at IS NOT NULL"
        ).fetchall()
    return [float(r[0]) for r in rows]


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out)


async def scenarios(args, stack, tenants, client) -> dict:
    db = stack.database(pool_size=args.concurrency)
    try:
        # Warm up: the relay is listening once a first message goes through.
        await delays(client, [await send(db, tenants[0])])
        results = {}
        for name, run in (
            ("steady", lambda: steady(db, tenants, args.steady, args.rate)),
            ("burst", lambda: burst(db, tenants, args.burst, args.concurrency)),
        ):
            began = time.monotonic()
            sent = await run()
            results[name] = {
                "sent": len(sent),
                "commit_to_start": ms(await delays(client, sent)),
                "sending_s": round(time.monotonic() - began, 2),
            }
        return results
    finally:
        await db.dispose()


async def measure(args, stack, settings, home: Path, address: str) -> dict:
    from tenantry.keys.service import TenantKeys, platform_key
    from tenantry.worker.client import connect

    tenants = await seed(stack, settings, args.tenants)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(
        TENANTRY_HOME=str(home),
        TENANTRY_DATABASE_URL=stack.admin_url,
        TENANTRY_TEMPORAL_ADDRESS=address,
        TENANTRY_POOL_TASK_QUEUE=settings.pool_task_queue,
        TENANTRY_ENVIRONMENT="test",
        TENANTRY_DEMO_TENANTS="false",
        TENANTRY_LOG_LEVEL="WARNING",
        TENANTRY_LOG_JSON="false",
    )
    keys_db = stack.database(pool_size=2)
    client = await connect(address, keys=TenantKeys(keys_db, platform_key(settings)))
    results = {}
    setups = (
        ("relay_alone", [sys.executable, "-m", "tenantry.cli", "relay"]),
        ("with_workers", [sys.executable, "-m", "tenantry.cli", "worker"]),
    )
    try:
        for name, command in setups:
            log = home / f"{name}.log"
            child = start_process(command, env, log)
            try:
                results[name] = await scenarios(args, stack, tenants, client)
                # The machine is shared: how busy it was (1-minute load average) is part of it.
                results[name]["load_average_after"] = round(os.getloadavg()[0], 2)
            except BaseException:
                print(tail(log), file=sys.stderr)
                raise
            finally:
                child.terminate()
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        results["relay_view_all"] = ms(relay_view(stack))
        return results
    finally:
        await keys_db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--steady", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from tenantry.worker.devserver import TemporalDevServer

    with temporary_stack("outbox") as stack:
        settings = stack.settings.model_copy(
            update={"pool_task_queue": f"bench-{uuid.uuid4().hex[:8]}"}
        )
        home = Path(settings.home)
        server = TemporalDevServer(home / "temporal", port=free_port())
        address = asyncio.run(server.start())
        settings = settings.model_copy(update={"temporal_address": address})
        try:
            results = asyncio.run(measure(args, stack, settings, home, address))
        finally:
            server.stop()
        data = {
            "benchmark": "outbox",
            "date": now_iso(),
            "machine": machine(),
            "postgres": server_version(stack),
            "setup": vars(args),
            "results": results,
        }
    rows = [
        (
            setup,
            name,
            r["sent"],
            *(r["commit_to_start"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
        for setup in ("relay_alone", "with_workers")
        for name, r in results[setup].items()
        if isinstance(r, dict)
    ]
    print(
        table(
            ("setup", "scenario", "messages", "p50 ms", "p95 ms", "p99 ms", "max ms"), rows, left=2
        )
    )
    view = results["relay_view_all"]
    print(
        f"relay's view (insert to delivered), all: p50 {view['p50_ms']} ms, p95 {view['p95_ms']} ms"
    )
    print(f"written to {write_json('outbox.json', data)}")


if __name__ == "__main__":
    main()
