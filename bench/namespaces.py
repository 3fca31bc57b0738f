"""Tenants' own Temporal namespaces: what each costs the Temporal server.

Setup: a temporary Temporal dev server (as `tenantry run` starts it). For 0 and then each count
of `--steps`, namespaces registered as the platform registers a tenant's
(`worker/namespaces.register`: retention and the `TenantId` search attribute), then, for the
same namespaces, one idle worker polling each (what an embedded dedicated worker adds).

Measured: the Temporal server's resident memory and the CPU time it spends over `--idle` seconds
(long polls and its own housekeeping), for each step.

Run from the repository root:  .venv/bin/python bench/namespaces.py
Options:                       --steps 10,25,50 --idle 10
Results: printed, and written to bench/results/namespaces.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import psutil

from common import cpu_seconds, machine, now_iso, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from tenantry.worker.devserver import TemporalDevServer
from tenantry.worker.namespaces import Namespaces, register
from tenantry.worker.runner import WORKFLOWS
from tests.servers import free_port


async def sample(server: psutil.Process, idle: float) -> dict:
    before = cpu_seconds(server.pid)
    await asyncio.sleep(idle)  # the measurement window, not a synchronisation
    return {
        "temporal_rss_mib": round(server.memory_info().rss / 2**20, 1),
        "temporal_cpu_per_s": round((cpu_seconds(server.pid) - before) / idle, 4),
    }


def per_namespace(rows: list[dict], polled: bool) -> dict:
    base, last = rows[0], [r for r in rows if r["polled"] == polled][-1]
    count = last["namespaces"]
    return {
        "rss_mib": round((last["temporal_rss_mib"] - base["temporal_rss_mib"]) / count, 2),
        "cpu_per_s": round((last["temporal_cpu_per_s"] - base["temporal_cpu_per_s"]) / count, 5),
    }


async def main(steps: list[int], idle: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-namespaces-"))
    temporal = TemporalDevServer(home, port=free_port())
    address = await temporal.start()
    try:
        client = await Client.connect(address)
        namespaces = Namespaces(client)
        server = psutil.Process(temporal.process.pid)
        rows = [{"namespaces": 0, "polled": False, **await sample(server, idle)}]
        print(rows[-1])
        names: list[str] = []
        for count in steps:
            while len(names) < count:
                names.append(f"tenant-bench-{len(names):03d}")
                await register(client, names[-1])
            rows.append({"namespaces": count, "polled": False, **await sample(server, idle)})
            print(rows[-1])
        workers = [
            Worker(namespaces.client(name), task_queue=f"{name}-jobs", workflows=WORKFLOWS)
            for name in names
        ]
        tasks = [asyncio.create_task(worker.run()) for worker in workers]
        rows.append({"namespaces": len(names), "polled": True, **await sample(server, idle)})
        print(rows[-1])
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        temporal.stop()
    return {"when": now_iso(), "machine": machine(), "idle_seconds": idle, "rows": rows,
            "per_namespace": per_namespace(rows, False),
            "per_polled_namespace": per_namespace(rows, True)}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,25,50")
    parser.add_argument("--idle", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(main([int(s) for s in args.steps.split(",")], args.idle))
    print("per namespace:", result["per_namespace"])
    print("per namespace with a polling worker:", result["per_polled_namespace"])
    print(write_json("namespaces.json", result))
