"""Noisy neighbour, second scenario: one tenant's upload burst beside 20 quiet tenants.

Run from the repository root (about 5-15 minutes, most of it the burst being ingested):

    .venv/bin/python -m bench.upload_burst
    .venv/bin/python bench/noisy_neighbor.py --scenario upload-burst     # the same

1. Starts the whole stack as `make run` does (`tenantry run` in a temporary home: embedded
   PostgreSQL, Temporal, the worker process, the API processes) and provisions 21 tenants through
   the admin API (`bench.load.provision`, limits raised so no tier's 429 is measured); waits until
   their seed documents are ingested, so the burst is the only ingestion.
2. The 20 quiet tenants send, open-loop (Poisson arrivals, latency counted from the moment a
   request was due), `--rate` requests a second between them: `GET /v1/me` (70%) and
   `POST /v1/search` (30%), through their own JWTs and API keys.
   * before: `--before` seconds of that alone;
   * burst:  the loud tenant uploads `--documents` Markdown files of about `--kib` KiB each
     (`POST /v1/documents/upload`, `--upload-concurrency` at a time), then waits until every one
     is `ready` or `failed` (or `--timeout`); the quiet load goes on all along.
3. Reported: the quiet tenants' p50/p95/p99 before and during the burst and the ratio of the p95s
   (the aim: <= 1.2), the worst quiet tenant's ratio, errors by status; the time from the first
   upload to the last document ready and each document's time to ready; the outbox's delay from the
   commit of each upload to its workflow start (`delivered_at - created_at`, the relay's own
   view, read from PostgreSQL); CPU per phase of the stack's processes, PostgreSQL and this client.
Results: printed, and written to bench/results/noisy_neighbor_upload_burst.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import (
    cpu_seconds,
    machine,
    machine_busy,
    now_iso,
    percentile,
    postgres_cpu,
    table,
    write_json,
)
from bench.load.provision import provision
from bench.load.run import LocalStack, _children

QUIET_TENANTS = 20
QUERIES = ("boiler pressure", "expansion vessel", "bleed the radiators", "filling loop")
VOCABULARY = (
    "pump valve sensor pressure boiler radiator circuit vessel loop drain flow heat meter gauge "
    "relay breaker fuse panel cable conduit switch motor bearing seal gasket filter duct damper "
    "fan coil chiller tower compressor refrigerant leak alarm reset inspect replace tighten clean "
    "measure record report escalate isolate restore verify calibrate lubricate align"
)
WORDS = VOCABULARY.split()


def markdown(rng: random.Random, kib: int, n: int) -> bytes:
    """About `kib` KiB of distinct prose (distinct, so the content hash never deduplicates)."""
    parts = [f"# Maintenance note {n}\n"]
    size = len(parts[0])
    while size < kib * 1024:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))).capitalize()
        paragraph = f"\n{sentence}. {rng.randint(0, 10**9)}.\n"
        parts.append(paragraph)
        size += len(paragraph)
    return "".join(parts).encode()


class Phases:
    """Which phase a request that is due now belongs to."""

    def __init__(self) -> None:
        self.name = "warm-up"


async def quiet_load(
    client: httpx.AsyncClient,
    tenants: list[dict[str, Any]],
    rate: float,
    phases: Phases,
    stop: asyncio.Event,
    samples: list[tuple[str, str, float, int]],
) -> None:
    """Open-loop Poisson arrivals over the quiet tenants until `stop`."""
    rng = random.Random(7)
    pending: set[asyncio.Task] = set()

    async def one(tenant: dict[str, Any], due: float, phase: str) -> None:
        caller = rng.choice(tenant["callers"])
        try:
            if rng.random() < 0.7:
                response = await client.get("/v1/me", headers=caller["headers"])
            else:
                response = await client.post(
                    "/v1/search",
                    json={"query": rng.choice(QUERIES), "limit": 5},
                    headers=caller["headers"],
                )
            code = response.status_code
        except httpx.HTTPError:
            code = 0
        samples.append((phase, tenant["slug"], time.monotonic() - due, code))

    due = time.monotonic()
    while not stop.is_set():
        due += rng.expovariate(rate)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(rng.choice(tenants), due, phases.name))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


async def upload_burst(
    client: httpx.AsyncClient,
    loud: dict[str, Any],
    *,
    documents: int,
    kib: int,
    concurrency: int,
    give_up_after: float,
) -> dict[str, Any]:
    rng = random.Random(11)
    headers = loud["callers"][0]["headers"]
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    accepted: dict[str, float] = {}
    refused: dict[int, int] = defaultdict(int)

    async def upload(n: int) -> None:
        body = markdown(rng, kib, n)
        async with gate:
            response = await client.post(
                "/v1/documents/upload",
                files={"file": (f"note-{n}.md", body, "text/markdown")},
                headers=headers,
            )
        if response.status_code == 202:
            accepted[response.json()["id"]] = time.monotonic()
        else:
            refused[response.status_code] += 1

    await asyncio.gather(*(upload(n) for n in range(documents)))
    uploaded = time.monotonic()
    ready_after: dict[str, float] = {}
    failed: list[str] = []
    deadline = started + give_up_after
    while len(ready_after) + len(failed) < len(accepted) and time.monotonic() < deadline:
        for document_id in [d for d in accepted if d not in ready_after and d not in failed]:
            response = await client.get(f"/v1/documents/{document_id}", headers=headers)
            if response.status_code != 200:
                continue
            status = response.json()["status"]
            if status == "ready":
                ready_after[document_id] = time.monotonic() - accepted[document_id]
            elif status == "failed":
                failed.append(document_id)
        await asyncio.sleep(0.5)  # polling interval of a client, not synchronisation of a test
    finished = time.monotonic()
    times = list(ready_after.values())
    return {
        "documents": documents,
        "kib_each": kib,
        "accepted": len(accepted),
        "refused_by_status": dict(refused),
        "ready": len(ready_after),
        "failed": len(failed),
        "unfinished": len(accepted) - len(ready_after) - len(failed),
        "uploads_seconds": round(uploaded - started, 1),
        "all_ready_seconds": round(finished - started, 1)
        if len(ready_after) == len(accepted)
        else None,
        "time_to_ready_s": {
            "p50": round(percentile(times, 50), 1),
            "p95": round(percentile(times, 95), 1),
            "max": round(max(times), 1),
        }
        if times
        else None,
    }


def latency_summary(samples: list[tuple[str, str, float, int]], phase: str) -> dict[str, Any]:
    mine = [s for s in samples if s[0] == phase]
    ok = [s[2] * 1000 for s in mine if 200 <= s[3] < 300]
    errors: dict[int, int] = defaultdict(int)
    for s in mine:
        if not 200 <= s[3] < 300:
            errors[s[3]] += 1
    per_tenant: dict[str, list[float]] = defaultdict(list)
    for s in mine:
        if 200 <= s[3] < 300:
            per_tenant[s[1]].append(s[2] * 1000)
    return {
        "requests": len(mine),
        "p50_ms": round(percentile(ok, 50), 1) if ok else None,
        "p95_ms": round(percentile(ok, 95), 1) if ok else None,
        "p99_ms": round(percentile(ok, 99), 1) if ok else None,
        "errors_by_status": dict(errors),
        "per_tenant_p95_ms": {
            t: round(percentile(v, 95), 1) for t, v in sorted(per_tenant.items()) if len(v) >= 5
        },
    }


def outbox_delays(postmaster_file: Path, slug: str, since: datetime) -> dict[str, Any]:
    """The relay's view of the burst's starts: `delivered_at - created_at`."""
    lines = postmaster_file.read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    with psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="tenantry") as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM o.delivered_at - o.created_at) FROM outbox o "
            "JOIN tenants t ON t.id = o.tenant_id "
            "WHERE t.slug = %s AND o.kind = 'start' AND o.delivered_at IS NOT NULL "
            "AND o.workflow_type = 'IngestDocument' AND o.created_at >= %s",
            (slug, since),
        ).fetchall()
    values = [float(r[0]) * 1000 for r in rows]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
    }


class StackCpu:
    """CPU seconds of `tenantry run`'s processes (API, worker, Temporal) and of PostgreSQL."""

    def __init__(self, root: int, postmaster: int) -> None:
        self.root, self.postmaster = root, postmaster

    def _stack(self) -> float:
        total, todo = 0.0, [self.root]
        while todo:
            pid = todo.pop()
            if pid == self.postmaster:
                continue
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue
            todo += _children(pid)
        return total

    def snapshot(self) -> tuple[float, float, float, tuple[int, int], float]:
        return (
            self._stack(),
            postgres_cpu(self.postmaster),
            time.process_time(),
            machine_busy(),
            time.monotonic(),
        )

    @staticmethod
    def delta(before: tuple, after: tuple) -> dict[str, float]:
        wall = after[4] - before[4]
        busy, total = after[3][0] - before[3][0], after[3][1] - before[3][1]
        return {
            "seconds": round(wall, 1),
            "stack_cores": round((after[0] - before[0]) / wall, 2),
            "postgres_cores": round((after[1] - before[1]) / wall, 2),
            "client_cores": round((after[2] - before[2]) / wall, 2),
            "machine_busy": round(busy / total, 2) if total else 0.0,
        }


async def wait_seed_documents(client: httpx.AsyncClient, tenants: list[dict[str, Any]]) -> None:
    for tenant in tenants:
        headers = tenant["callers"][0]["headers"]
        for _ in range(600):
            response = await client.get(f"/v1/documents/{tenant['owned_ids'][0]}", headers=headers)
            if response.status_code == 200 and response.json()["status"] in ("ready", "failed"):
                break
            await asyncio.sleep(0.5)


async def measure(args, stack: LocalStack) -> dict[str, Any]:
    plan = await provision(stack.url, stack.token, tenants=QUIET_TENANTS + 1, identities=3)
    tenants = plan["tenants"]
    loud, quiet = tenants[0], tenants[1:]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=stack.url, timeout=httpx.Timeout(30.0), limits=limits
    ) as client:
        await wait_seed_documents(client, tenants)
        cpu = StackCpu(stack.proc.pid, stack.postmaster)
        phases, stop, samples = Phases(), asyncio.Event(), []
        load = asyncio.create_task(quiet_load(client, quiet, args.rate, phases, stop, samples))
        await asyncio.sleep(5)  # warm-up: connections opened, caches filled; not measured
        phases.name = "before"
        first = cpu.snapshot()
        await asyncio.sleep(args.before)
        phases.name = "burst"
        burst_started = datetime.now(UTC)
        second = cpu.snapshot()
        burst = await upload_burst(
            client,
            loud,
            documents=args.documents,
            kib=args.kib,
            concurrency=args.upload_concurrency,
            give_up_after=args.timeout,
        )
        third = cpu.snapshot()
        stop.set()
        await load
    before, during = latency_summary(samples, "before"), latency_summary(samples, "burst")
    ratios = {
        t: round(during["per_tenant_p95_ms"][t] / p95, 2)
        for t, p95 in before["per_tenant_p95_ms"].items()
        if t in during["per_tenant_p95_ms"] and p95
    }
    return {
        "quiet_rate_rps": args.rate,
        "before": {**before, "cpu": StackCpu.delta(first, second)},
        "burst": {**during, "cpu": StackCpu.delta(second, third)},
        "p95_ratio_burst_over_before": round(during["p95_ms"] / before["p95_ms"], 2)
        if before["p95_ms"] and during["p95_ms"]
        else None,
        "worst_tenant_p95_ratio": max(ratios.values()) if ratios else None,
        "median_tenant_p95_ratio": statistics.median(ratios.values()) if ratios else None,
        "uploads": burst,
        "outbox_delay": outbox_delays(
            stack.home / "pgdata" / "postmaster.pid", loud["slug"], burst_started
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=15.0, help="quiet requests a second")
    parser.add_argument("--before", type=float, default=60.0, help="seconds of quiet load alone")
    parser.add_argument("--documents", type=int, default=30)
    parser.add_argument("--kib", type=int, default=50)
    parser.add_argument("--upload-concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900.0, help="for the burst to finish")
    parser.add_argument("--output", default="noisy_neighbor_upload_burst.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    stack = LocalStack()
    try:
        stack.wait_ready()
        measured = asyncio.run(measure(args, stack))
    finally:
        stack.stop()
    result = {
        "benchmark": "noisy_neighbor_upload_burst",
        "date": now_iso(),
        "machine": machine(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        **measured,
    }
    path = write_json(args.output, result)
    rows = [
        [
            phase,
            result[phase]["requests"],
            result[phase]["p50_ms"],
            result[phase]["p95_ms"],
            result[phase]["p99_ms"],
            result[phase]["errors_by_status"] or "-",
            result[phase]["cpu"]["stack_cores"],
            result[phase]["cpu"]["postgres_cores"],
            result[phase]["cpu"]["machine_busy"],
        ]
        for phase in ("before", "burst")
    ]
    print(
        table(
            ["phase", "requests", "p50 ms", "p95 ms", "p99 ms", "errors", "stack", "pg", "busy"],
            rows,
        )
    )
    print(
        f"quiet p95 burst/before: {result['p95_ratio_burst_over_before']} "
        f"(worst tenant {result['worst_tenant_p95_ratio']}, aim <= 1.2)"
    )
    print(f"uploads: {result['uploads']}")
    print(f"outbox delay (commit to workflow start): {result['outbox_delay']}")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
