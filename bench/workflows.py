"""Incident workflows end to end: how many incidents one worker triages per second when many
tenants report at once, how long each waits from the API call to its triage, and how evenly
that wait is shared between tenants.

Setup (all on this machine, everything sharing its cores): a temporary embedded PostgreSQL
(`temporary_stack`), a Temporal dev server (`TemporalDevServer`, SQLite in the temporary home, on a
free port), the API in this process (`create_app(settings, database_url=stack.app_url)` driven
through httpx's ASGITransport inside its lifespan: no sockets, no uvicorn), and ONE worker in a
subprocess, `python -m tenantry.cli worker` on the pool task queue (the real command:
`build_worker`, `max_concurrent_activities=8`, the bundled multilingual-e5-small embedder).

Seeding: `--tenants` tenants (`tenants.service.create`, free tier), each with request limits raised
by `limits.service.set_overrides` (so rate limiting is not what is measured), one owner
(`identity.users.create`) who logs in through `POST /v1/auth/login`, and one knowledge document
(`POST /v1/documents`) whose ingestion workflow is awaited (document status `ready`), so triage
has something to search.

Measured: `--per-tenant` incidents per tenant, sent interleaved across tenants (tenant 1, 2, ...,
N, 1, 2, ...) with at most `--concurrency` requests in flight, all through
`POST /v1/incidents`. For each incident, create-to-triaged is the time from just before the POST
until a poller (a superuser connection, every 20 ms) first sees its row's status leave `open`
(`triaged`, `awaiting_approval` or later). Reported: throughput (incidents triaged per second,
first POST to last triage), p50/p95/max create-to-triaged, the POST's own latency, per-tenant
p95 spread (min/median/max of the tenants' p95 and max/min), a breakdown from each workflow's
Temporal history (POST to workflow start, workflow start to the triage activity's schedule,
activity queue wait = schedule-to-start, activity run = start-to-close), the CPU of each process,
and the time of the bundled embedder's query embedding alone (serial and 8 at once), which each
triage does once.

Run from the repository root:  .venv/bin/python bench/workflows.py
Options:                       --tenants 50 --per-tenant 10 --concurrency 64
Results: printed, and written to bench/results/workflows.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from common import (
    cpu_seconds,
    free_port,
    machine,
    machine_busy,
    now_iso,
    percentile,
    postgres_cpu,
    server_version,
    table,
    tail,
    temporary_stack,
    write_json,
)

PASSWORD = "Bench-Workflows-2026!x"
POLL_SECONDS = 0.02
TRIAGE_TIMEOUT = 240.0
INGEST_TIMEOUT = 180.0
SEED = 20260101

SUBJECTS = [
    "The boiler",
    "The router",
    "The VPN",
    "The printer",
    "The heat pump",
    "The smart meter",
    "The set-top box",
    "The lift",
    "The phone line",
    "The alarm panel",
]
PROBLEMS = [
    "won't start",
    "keeps dropping the connection",
    "shows error E{n}",
    "is very slow",
    "makes a clicking noise",
    "loses pressure",
    "reboots by itself",
    "blinks red",
]
WHEN = ["after a power cut", "at night", "after an update", "since yesterday", "every morning"]
FIXES = [
    "Restart it and wait two minutes before testing again.",
    "Check the wiring and the fuse in the consumer unit.",
    "Roll back the last firmware update from the admin page.",
    "Replace the pressure valve; a technician visit is needed.",
    "Reset to factory settings and restore the saved profile.",
]


def guide(rng: random.Random, slug: str) -> tuple[str, str]:
    """A short support guide: one paragraph per subject, each with problems and their fixes."""
    paragraphs = []
    for subject in SUBJECTS:
        lines = [
            f"{subject} {rng.choice(PROBLEMS).format(n=rng.randint(1, 99))} "
            f"{rng.choice(WHEN)}. {rng.choice(FIXES)}"
            for _ in range(3)
        ]
        paragraphs.append(" ".join(lines))
    return f"Support guide for {slug}", "\n\n".join(paragraphs)


def incident_text(rng: random.Random) -> dict[str, str]:
    subject = rng.choice(SUBJECTS)
    problem = rng.choice(PROBLEMS).format(n=rng.randint(1, 99))
    when = rng.choice(WHEN)
    return {
        "title": f"{subject} {problem}",
        "description": f"{subject} {problem} {when}. The customer already tried restarting it.",
        "severity": rng.choice(["low", "medium", "high"]),
    }


def ms(seconds: list[float]) -> dict[str, float]:
    values = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.fmean(values), 1),
        "n": len(values),
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "worker"], env=env, stdout=out, stderr=out
        )


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def seed(stack, settings, slugs: list[str]) -> dict[str, uuid.UUID]:
    from tenantry.identity import users
    from tenantry.identity.schemas import UserCreate
    from tenantry.limits import service as limits
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate
    from tenantry.tenants.tiers import LimitsPatch

    db = stack.database()
    ids: dict[str, uuid.UUID] = {}
    try:
        for slug in slugs:
            async with db.control() as session:
                tenant = await tenants.create(
                    session,
                    data=TenantCreate(slug=slug, name=slug.title()),
                    actor="bench",
                    settings=settings,
                )
            ids[slug] = tenant.id
            async with db.control() as session:
                # Incidents wait for a person and hold a slot: room for every one sent.
                patch = LimitsPatch(
                    requests_per_minute=100_000,
                    concurrent_requests=1_000,
                    workflows_in_flight=1_000,
                )
                await limits.set_overrides(session, slug=slug, patch=patch, actor="bench")
            async with db.tenant(tenant.id) as session:
                await users.create(
                    session,
                    tenant_id=tenant.id,
                    data=UserCreate(
                        email=f"owner@{slug}.example.com", password=PASSWORD, role="owner"
                    ),
                    actor="bench",
                    actor_role=None,
                )
    finally:
        await db.dispose()
    return ids


async def wait_for(conn: psycopg.AsyncConnection, sql: str, params, want: int, limit_s: float):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        got = (await (await conn.execute(sql, params)).fetchone())[0]
        if got >= want:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"timed out waiting for: {sql} ({want})")


class Poller:
    """First-seen time of every incident whose status has left `open`."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn
        self.seen: dict[uuid.UUID, float] = {}
        self.polls = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            rows = await (
                await self.conn.execute("SELECT id FROM incidents WHERE status <> 'open'")
            ).fetchall()
            now = time.perf_counter()
            self.polls += 1
            for (incident_id,) in rows:
                self.seen.setdefault(incident_id, now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)


async def breakdown(address: str, incidents: list[dict[str, Any]]) -> dict[str, Any]:
    """From each workflow's history: POST->start, start->triage scheduled, queue wait, run."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client

    client = await Client.connect(address)
    gate = asyncio.Semaphore(16)
    parts: dict[str, list[float]] = {
        "post_to_workflow_start": [],
        "start_to_triage_scheduled": [],
        "triage_queue_wait": [],
        "triage_run": [],
        "triaged_to_first_seen": [],
    }

    async def one(item: dict[str, Any]) -> None:
        async with gate:
            handle = client.get_workflow_handle(item["workflow_id"])
            history = await handle.fetch_history()
        started = scheduled = run_start = run_end = None
        for event in history.events:
            t = event.event_time.ToNanoseconds() / 1e9
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                started = t
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                if name == "incidents.triage" and scheduled is None:
                    scheduled = t
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                if run_start is None and scheduled is not None:
                    run_start = t
            elif (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                and run_end is None
                and run_start is not None
            ):
                run_end = t
        if None in (started, scheduled, run_start, run_end):
            return
        parts["post_to_workflow_start"].append(started - item["wall_sent"])
        parts["start_to_triage_scheduled"].append(scheduled - started)
        parts["triage_queue_wait"].append(run_start - scheduled)
        parts["triage_run"].append(run_end - run_start)
        parts["triaged_to_first_seen"].append(item["wall_seen"] - run_end)

    await asyncio.gather(*(one(i) for i in incidents))
    return {k: ms(v) for k, v in parts.items() if v}


async def embedding_cost(embedder, texts: list[str]) -> dict[str, Any]:
    """The bundled embedder's query embedding alone, here (the worker is idle by then)."""
    for t in texts[:3]:
        await embedder.query(t)
    serial = []
    for t in texts:
        t0 = time.perf_counter()
        await embedder.query(t)
        serial.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    gate = asyncio.Semaphore(8)

    async def one(t: str) -> None:
        async with gate:
            await embedder.query(t)

    await asyncio.gather(*(one(t) for t in texts * 2))
    wall = time.perf_counter() - t0
    return {
        "serial": ms(serial),
        "eight_at_once_per_second": round(len(texts) * 2 / wall, 1),
        "serial_per_second": round(len(serial) / sum(serial), 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from tenantry.app import create_app
    from tenantry.db.urls import libpq_dsn
    from tenantry.observability.logging import configure_logging
    from tenantry.settings import Settings
    from tenantry.worker.devserver import TemporalDevServer

    configure_logging(level="WARNING", json=False)  # no access line per request
    rng = random.Random(SEED)
    slugs = [f"wf-{n:03d}" for n in range(1, args.tenants + 1)]
    started = time.perf_counter()
    with temporary_stack("workflows") as stack:
        home = Path(stack.settings.home)
        version = server_version(stack)
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        temporal = TemporalDevServer(home / "temporal", port=free_port())
        worker = None
        try:
            address = await temporal.start()
            settings = Settings(
                home=home, environment="test", demo_tenants=False, log_level="WARNING"
            ).model_copy(update={"temporal_address": address, "log_json": False})
            await seed(stack, settings, slugs)
            print(f"seeded {len(slugs)} tenants in {time.perf_counter() - started:.1f} s")

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
            worker_log = home / "worker.log"
            worker = start_worker(env, worker_log)

            app = create_app(settings, database_url=stack.app_url)
            poll_conn = await psycopg.AsyncConnection.connect(
                libpq_dsn(stack.admin_url), autocommit=True
            )
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=60
                ) as http,
            ):
                tokens: dict[str, str] = {}
                for slug in slugs:
                    r = await http.post(
                        "/v1/auth/login",
                        json={
                            "tenant": slug,
                            "email": f"owner@{slug}.example.com",
                            "password": PASSWORD,
                        },
                    )
                    r.raise_for_status()
                    tokens[slug] = r.json()["access_token"]

                t0 = time.perf_counter()
                for slug in slugs:
                    title, body = guide(rng, slug)
                    r = await http.post(
                        "/v1/documents",
                        json={"title": title, "text": body},
                        headers={"Authorization": f"Bearer {tokens[slug]}"},
                    )
                    if r.status_code != 202:
                        raise SystemExit(f"document for {slug}: {r.status_code} {r.text}")
                await wait_for(
                    poll_conn,
                    "SELECT count(*) FROM documents WHERE status = 'ready'",
                    None,
                    len(slugs),
                    INGEST_TIMEOUT,
                )
                if worker.poll() is not None:
                    raise SystemExit(f"worker exited:\n{tail(worker_log)}")
                ingest_s = time.perf_counter() - t0
                print(f"{len(slugs)} documents ingested in {ingest_s:.1f} s")

                # The batch: tenants interleaved, bounded client concurrency.
                jobs = [
                    (slug, incident_text(rng)) for _ in range(args.per_tenant) for slug in slugs
                ]
                gate = asyncio.Semaphore(args.concurrency)
                sent: list[dict[str, Any]] = []
                failures: list[str] = []
                stop = asyncio.Event()
                poller = Poller(poll_conn)

                async def create(slug: str, body: dict[str, str]) -> None:
                    async with gate:
                        t_sent, wall_sent = time.perf_counter(), time.time()
                        r = await http.post(
                            "/v1/incidents",
                            json=body,
                            headers={"Authorization": f"Bearer {tokens[slug]}"},
                        )
                        t_answered = time.perf_counter()
                    if r.status_code != 201:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                        return
                    out = r.json()
                    number = str(out["number"]).removeprefix("INC-")
                    sent.append(
                        {
                            "slug": slug,
                            "id": uuid.UUID(out["id"]),
                            "workflow_id": f"{slug}/incident/{number}",
                            "sent": t_sent,
                            "wall_sent": wall_sent,
                            "answered": t_answered,
                        }
                    )

                meter_before = (
                    time.process_time(),
                    cpu_seconds(worker.pid),
                    cpu_seconds(temporal.process.pid),
                    postgres_cpu(postmaster),
                    machine_busy(),
                )
                poll_task = asyncio.create_task(poller.run(stop))
                batch_start = time.perf_counter()
                wall_offset = time.time() - batch_start
                await asyncio.gather(*(create(s, b) for s, b in jobs))
                posted_s = time.perf_counter() - batch_start
                deadline = time.monotonic() + TRIAGE_TIMEOUT
                while time.monotonic() < deadline:
                    if all(item["id"] in poller.seen for item in sent):
                        break
                    if worker.poll() is not None:
                        raise SystemExit(f"worker exited:\n{tail(worker_log)}")
                    await asyncio.sleep(0.05)
                stop.set()
                await poll_task
                meter_after = (
                    time.process_time(),
                    cpu_seconds(worker.pid),
                    cpu_seconds(temporal.process.pid),
                    postgres_cpu(postmaster),
                    machine_busy(),
                )

                done = [i for i in sent if i["id"] in poller.seen]
                for item in done:
                    item["seen"] = poller.seen[item["id"]]
                    item["wall_seen"] = item["seen"] + wall_offset
                last_seen = max(i["seen"] for i in done)
                embed = await embedding_cost(
                    app.state.embedder,
                    [f"{b['title']}\n\n{b['description']}" for _, b in jobs[:40]],
                )
            await poll_conn.close()
            parts = await breakdown(address, done)
        finally:
            if worker is not None:
                stop_process(worker)
            temporal.stop()

    total = len(jobs)
    elapsed = last_seen - batch_start
    create_to_triaged = [i["seen"] - i["sent"] for i in done]
    per_tenant: dict[str, list[float]] = {}
    for item in done:
        per_tenant.setdefault(item["slug"], []).append(item["seen"] - item["sent"])
    tenant_p95 = sorted(percentile(v, 95) * 1000 for v in per_tenant.values())
    busy = meter_after[4][0] - meter_before[4][0]
    jiffies = meter_after[4][1] - meter_before[4][1]
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {
        "api_and_client_s": round(meter_after[0] - meter_before[0], 1),
        "worker_s": round(meter_after[1] - meter_before[1], 1),
        "temporal_s": round(meter_after[2] - meter_before[2], 1),
        "postgres_s": round(meter_after[3] - meter_before[3], 1),
        "machine_busy": round(busy / jiffies, 3) if jiffies else 0.0,
        "machine_busy_core_s": round(busy / ticks, 1),
    }
    return {
        "benchmark": "workflows",
        "date": now_iso(),
        "machine": machine(),
        "postgres": version,
        "setup": {
            "tenants": args.tenants,
            "per_tenant": args.per_tenant,
            "client_concurrency": args.concurrency,
            "api": "in-process, httpx ASGITransport inside the app lifespan (no uvicorn)",
            "worker": "one subprocess `python -m tenantry.cli worker` on the pool queue "
            "(max_concurrent_activities=8, local multilingual-e5-small)",
            "temporal": "TemporalDevServer (temporal server start-dev, SQLite WAL)",
            "llm": "none (extractive proposal)",
            "triaged": "incident row status != 'open', polled every 20 ms (superuser)",
            "ingest_s": round(ingest_s, 1),
            "documents": args.tenants,
            "seed_wall_s": round(time.perf_counter() - started, 1),
        },
        "incidents": {"sent": total, "created": len(sent), "triaged": len(done)},
        "failures": failures[:10],
        "posting_s": round(posted_s, 2),
        "batch_s": round(elapsed, 2),
        "throughput_per_s": round(len(done) / elapsed, 2),
        "create_to_triaged": ms(create_to_triaged),
        "post_latency": ms([i["answered"] - i["sent"] for i in sent]),
        "per_tenant_p95_ms": {
            "min": round(tenant_p95[0], 1),
            "median": round(statistics.median(tenant_p95), 1),
            "max": round(tenant_p95[-1], 1),
            "max_over_min": round(tenant_p95[-1] / tenant_p95[0], 2),
            "tenants": len(tenant_p95),
        },
        "breakdown": parts,
        "embedding": embed,
        "cpu": cpu,
        "polls": poller.polls,
    }


def report(result: dict[str, Any]) -> None:
    c, t = result["create_to_triaged"], result["per_tenant_p95_ms"]
    n = result["incidents"]
    print()
    print(
        f"{n['triaged']}/{n['sent']} incidents triaged, {result['setup']['tenants']} tenants, "
        f"one worker; posted in {result['posting_s']} s, all triaged after {result['batch_s']} s"
    )
    print(
        table(
            ["measure", "value"],
            [
                ["throughput (triaged/s)", result["throughput_per_s"]],
                ["create-to-triaged p50 ms", c["p50_ms"]],
                ["create-to-triaged p95 ms", c["p95_ms"]],
                ["create-to-triaged max ms", c["max_ms"]],
                ["POST /v1/incidents p50 ms", result["post_latency"]["p50_ms"]],
                ["POST /v1/incidents p95 ms", result["post_latency"]["p95_ms"]],
                ["per-tenant p95 min ms", t["min"]],
                ["per-tenant p95 median ms", t["median"]],
                ["per-tenant p95 max ms", t["max"]],
                ["per-tenant p95 max/min", t["max_over_min"]],
            ],
        )
    )
    print()
    print("Where the time goes (from the workflow histories):")
    print(
        table(
            ["step", "p50 ms", "p95 ms", "max ms", "mean ms"],
            [
                [k, v["p50_ms"], v["p95_ms"], v["max_ms"], v["mean_ms"]]
                for k, v in result["breakdown"].items()
            ],
        )
    )
    e = result["embedding"]
    print()
    print(
        f"embedding one query (idle worker): p50 {e['serial']['p50_ms']} ms, "
        f"{e['serial_per_second']}/s serial, {e['eight_at_once_per_second']}/s 8 at once"
    )
    print("CPU over the batch (s):", result["cpu"])
    if result["failures"]:
        print("failures:", result["failures"])


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--per-tenant", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    result = asyncio.run(main(args))
    report(result)
    path = write_json("workflows.json", result)
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    cli()
