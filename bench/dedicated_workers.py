"""Embedded dedicated workers: what each tenant's own Temporal worker costs a worker process.

Setup: a temporary Temporal dev server; in this process, `--queues` Temporal workers, each on a
queue of its own, with the platform's workflows and the worker's default pollers (what
`runtime/dedicated_workers.py` starts per tenant with dedicated workers), polling idle.

Measured, for 0 and then each count of `--steps`: this process's resident memory and threads,
and the CPU time this process and the Temporal server spend over `--idle` seconds of idle
polling (long polls: the cost of a queue nobody sends work to).

Run from the repository root:  .venv/bin/python bench/dedicated_workers.py
Options:                       --steps 10,50,100 --idle 10
Results: printed, and written to bench/results/dedicated_workers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

import psutil

from common import machine, now_iso, write_json

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from tenantry.worker.devserver import TemporalDevServer
from tenantry.worker.runner import WORKFLOWS
from tests.servers import free_port


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def sample(me: psutil.Process, server: psutil.Process, idle: float) -> dict:
    mine, theirs = cpu_seconds(me), cpu_seconds(server)
    await asyncio.sleep(idle)  # the measurement window, not a synchronisation
    return {
        "rss_mib": round(me.memory_info().rss / 2**20, 1),
        "threads": me.num_threads(),
        "process_cpu_per_s": round((cpu_seconds(me) - mine) / idle, 4),
        "temporal_cpu_per_s": round((cpu_seconds(server) - theirs) / idle, 4),
    }


async def main(steps: list[int], idle: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-dedicated-"))
    temporal = TemporalDevServer(home, port=free_port())
    address = await temporal.start()
    try:
        client = await Client.connect(address)
        me, server = psutil.Process(), psutil.Process(temporal.process.pid)
        rows = [{"queues": 0, **await sample(me, server, idle)}]
        print(rows[-1])
        tasks: list[asyncio.Task] = []
        workers: list[Worker] = []
        for count in steps:
            while len(workers) < count:
                queue = f"tenant-bench-{uuid.uuid4().hex[:8]}-jobs"
                worker = Worker(client, task_queue=queue, workflows=WORKFLOWS)
                workers.append(worker)
                tasks.append(asyncio.create_task(worker.run()))
            rows.append({"queues": count, **await sample(me, server, idle)})
            print(rows[-1])
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        temporal.stop()
    base = rows[0]
    last = rows[-1]
    per_queue = {
        "rss_mib": round((last["rss_mib"] - base["rss_mib"]) / last["queues"], 2),
        "threads": round((last["threads"] - base["threads"]) / last["queues"], 2),
    }
    return {"when": now_iso(), "machine": machine(), "idle_seconds": idle, "rows": rows,
            "per_queue": per_queue}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,50,100")
    parser.add_argument("--idle", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(main([int(s) for s in args.steps.split(",")], args.idle))
    print("per queue:", result["per_queue"])
    print(write_json("dedicated_workers.json", result))
