"""Noisy neighbour: does one tenant far over its rate limit slow the other tenants down?

Starts its own embedded PostgreSQL in a temporary home and creates 21 standard-tier tenants, each
with an API key: 20 quiet tenants (requests_per_minute overridden to 6,000, so they are never
limited) and one loud tenant (requests_per_minute overridden to 600, i.e. 10 per second). The
overrides are set with `limits.service.set_overrides` before the application starts; it then runs
under uvicorn in a subprocess on 127.0.0.1 (one process, as `bench/auth.py` runs it). Every request
is `GET /v1/me` with `X-API-Key`, sent by a minimal HTTP/1.1 client over keep-alive connections
(httpx would cost the 2-core machine more CPU than the server spends per request).

1. Capacity: a closed loop of CONCURRENCY connections (each its own quiet tenant) for a few
   seconds gives the requests per second the machine serves.
2. The quiet tenants then send, open-loop at fixed intervals (each tenant its own random phase),
   LOAD_FRACTION of that capacity between them, each far below its own limit. They send the whole
   time, through alternating slices of two phases, in ABBA order so linear drift cancels out:

   * A: the 20 quiet tenants alone;
   * B: the same, plus the loud tenant sending LOUD_FACTOR times its limit, open-loop at fixed
     intervals, at most LOUD_CONNECTIONS requests in flight (a request due while all are busy
     is not sent, and counted).

   The first SETTLE seconds of each slice are not measured. A request's latency runs from the
   moment it was due (so a client that falls behind cannot hide a slow server), until the whole
   answer is read; the latency from the moment it was written is kept too. Client timeout:
   TIMEOUT seconds; timeouts and connection errors are counted.

Reported: each quiet tenant's p95 in A and in B, the ratio B/A per tenant, the worst and the
median ratio (the aim: worst <= 1.2), with a noise floor: the same ratios between two halves of
the A slices (and of the B slices) alone; for the loud tenant, its 200s and 429s (and any other
answer), the p50/p95 latency of its 429s, timeouts and errors; and per phase the CPU the client,
the server, PostgreSQL and anything else (other processes) used, and how busy the machine was:
other processes on a 2-core machine skew the figures, so a run with much "other" CPU is worth
repeating.

Run from the repository root:  .venv/bin/python bench/noisy_neighbor.py   (about 2 minutes)
The second scenario, one tenant uploading 30 documents beside 20 quiet tenants under API and
search load:  .venv/bin/python bench/noisy_neighbor.py --scenario upload-burst  (bench/upload_burst.py)
Results: printed, and written to bench/results/noisy_neighbor.json. Variations (--help):
--load-fraction, --loud-factor, --loud-connections, --slices, --slice-seconds, --output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CONTENT_LENGTH,
    Meter,
    free_port,
    machine,
    now_iso,
    percentile,
    serve,
    server_version,
    start_server,
    stop_server,
    table,
    tail,
    temporary_stack,
    wait_until_up,
    write_json,
)

QUIET_TENANTS = 20
QUIET_RPM = 6_000  # the quiet tenants' override: never limited
LOUD_RPM = 600  # the loud tenant's override: 10 requests a second
LOUD_FACTOR = 20  # the loud tenant sends 20 times its limit
LOUD_CONNECTIONS = 32  # at most this many loud requests in flight
QUIET_CONNECTIONS = 16  # a quiet tenant's bound: its tier's concurrency limit
TIER = "standard"
LOAD_FRACTION = 0.4  # of the measured capacity, shared by the quiet tenants
CONCURRENCY = 16  # connections of the capacity measurement
WARMUP_S = 3.0
CAPACITY_S = 5.0
SLICES = "ABBAABBA"
SLICE_S = 12.0
SETTLE_S = 1.0
TIMEOUT = 5.0
PATH = "/v1/me"
SEED = 7
SERVER_KEEP_ALIVE_S = 120  # uvicorn's default (5 s) would close a quiet tenant's idle connections
OUTPUT = "noisy_neighbor.json"


def serve_here() -> None:
    serve(timeout_keep_alive=SERVER_KEEP_ALIVE_S)


# A minimal HTTP/1.1 client: one request per connection at a time, keep-alive.


class Failure(Exception):
    """The connection broke or the answer was not HTTP."""


@dataclass
class Answer:
    status: int
    head: bytes
    body: bytes


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes):
    writer.write(request)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = CONTENT_LENGTH.search(head)
        body = await reader.readexactly(int(length.group(1)) if length else 0)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise Failure(repr(error)) from error
    if not head.startswith(b"HTTP/1.1 "):
        raise Failure(f"not HTTP: {head[:40]!r}")
    return Answer(int(head[9:12]), head, body)


def encode_get(port: int, api_key: str) -> bytes:
    lines = [f"GET {PATH} HTTP/1.1", f"host: 127.0.0.1:{port}", f"x-api-key: {api_key}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Sample:
    slice: int  # index into SLICES, or -1: in a slice's settling time
    status: int  # 0: timeout, -1: connection error, -2: not sent (all connections busy)
    due_ns: int  # latency from the moment the request was due
    sent_ns: int  # latency from the moment it was written
    refusal: str = ""  # 429s: "rate" or "concurrency"


@dataclass
class Client:
    """One tenant's connections to the server: reused last-in first-out, opened when needed."""

    name: str
    port: int
    request: bytes
    max_connections: int
    skip_when_busy: bool  # the loud tenant: open-loop, a request due with no free slot is dropped
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.max_connections)

    async def send(self, due_ns: int, slice_index: int) -> None:
        if self.skip_when_busy and self.slots.locked():
            self.samples.append(Sample(slice_index, -2, 0, 0))
            return
        async with self.slots:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await self._send(due_ns, slice_index)
            finally:
                self.in_flight -= 1

    async def _send(self, due_ns: int, slice_index: int) -> None:
        conn = None
        sent = time.perf_counter_ns()
        try:
            async with asyncio.timeout(TIMEOUT):
                conn = self.idle.pop() if self.idle else await self._open()
                sent = time.perf_counter_ns()
                answer = await exchange(*conn, self.request)
        except TimeoutError:
            self._discard(conn)
            self.samples.append(Sample(slice_index, 0, 0, 0))
            return
        except (OSError, Failure):
            self._discard(conn)
            self.samples.append(Sample(slice_index, -1, 0, 0))
            return
        end = time.perf_counter_ns()
        refusal = ""
        if answer.status == 429:
            refusal = "concurrency" if b"in flight" in answer.body else "rate"
        self.samples.append(Sample(slice_index, answer.status, end - due_ns, end - sent, refusal))
        if b"connection: close" in answer.head.lower():
            self._discard(conn)
        else:
            self.idle.append(conn)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    @staticmethod
    def _discard(conn) -> None:
        if conn is not None:
            conn[1].close()

    async def check(self) -> Answer:
        """One request, outside any measurement."""
        conn = self.idle.pop() if self.idle else await self._open()
        answer = await exchange(*conn, self.request)
        self.idle.append(conn)
        return answer

    async def close(self) -> None:
        while self.idle:
            _, writer = self.idle.pop()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def closed_loop(clients: list[Client], seconds: float) -> tuple[int, float, list[int]]:
    """Each client sends one request after the other for `seconds`: (answers, wall s, statuses)."""
    stop = time.perf_counter() + seconds
    statuses: list[int] = []

    async def worker(client: Client) -> None:
        while time.perf_counter() < stop:
            statuses.append((await client.check()).status)

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return len(statuses), time.perf_counter() - start, statuses


class Clock:
    """Which slice a moment falls in (-1 while settling), from the start of the first slice."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.slice_ns = int(SLICE_S * 1e9)
        self.settle_ns = int(SETTLE_S * 1e9)
        self.end_ns = start_ns + self.slice_ns * len(SLICES)

    def slice_of(self, t_ns: int) -> int:
        index, offset = divmod(t_ns - self.start_ns, self.slice_ns)
        return -1 if offset < self.settle_ns or index >= len(SLICES) else int(index)


async def pace(
    client: Client,
    rate: float,
    clock: Clock,
    tasks: set[asyncio.Task],
    *,
    phase: float,
    only: str | None = None,
) -> None:
    """Fire `client.send` every 1/rate seconds, open-loop (in slices of kind `only`, if given)."""
    interval = 1e9 / rate
    k = 0
    while True:
        due = clock.start_ns + int((k + phase) * interval)
        k += 1
        if due >= clock.end_ns:
            return
        index = (due - clock.start_ns) // clock.slice_ns
        if only is not None and SLICES[index] != only:
            continue
        delay = (due - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(client.send(due, clock.slice_of(due)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def run_slices(quiet: list[Client], loud: Client, quiet_rate: float, loud_rate: float, meter):
    """The quiet tenants through every slice, the loud one in the B slices; CPU per slice."""
    rng = random.Random(SEED)
    clock = Clock(time.perf_counter_ns() + int(0.2e9))
    tasks: set[asyncio.Task] = set()
    pacers = [pace(c, quiet_rate, clock, tasks, phase=rng.random()) for c in quiet] + [
        pace(loud, loud_rate, clock, tasks, phase=rng.random(), only="B")
    ]
    cpu: list[dict[str, float]] = []

    async def measure() -> None:
        for index in range(len(SLICES)):
            start = clock.start_ns + index * clock.slice_ns + clock.settle_ns
            await asyncio.sleep(max(0.0, (start - time.perf_counter_ns()) / 1e9))
            before = meter.snapshot()
            end = clock.start_ns + (index + 1) * clock.slice_ns
            await asyncio.sleep(max(0.0, (end - time.perf_counter_ns()) / 1e9))
            cpu.append(
                {"slice": index, "phase": SLICES[index], **meter.delta(before, meter.snapshot())}
            )

    await asyncio.gather(measure(), *pacers)
    if tasks:
        await asyncio.wait(set(tasks), timeout=TIMEOUT + 1)
    return cpu


def latencies_ms(samples: list[Sample], phase: str, *, sent: bool = False) -> list[float]:
    return [
        (s.sent_ns if sent else s.due_ns) / 1e6
        for s in samples
        if s.slice >= 0 and SLICES[s.slice] == phase and s.status > 0
    ]


def control_ratios(quiet: list[Client], phase: str) -> dict[str, Any] | None:
    """Noise floor: p95 ratios between two halves of the same phase's slices, per tenant.

    The slices are paired outside-in (first with last...) and the pairs dealt to the halves in
    turn, so both halves have the same mean position in the run (drift cancels out, as for B/A).
    Each half has half the samples, so this floor is somewhat noisier than the B/A ratios.
    """
    indices = [i for i, p in enumerate(SLICES) if p == phase]
    pairs = [(indices[i], indices[-1 - i]) for i in range(len(indices) // 2)]
    halves: list[set[int]] = [set(), set()]
    for n, pair in enumerate(pairs):
        halves[n % 2].update(pair)
    if not halves[1]:
        return None
    ratios = []
    for client in quiet:
        first, second = (
            [s.due_ns / 1e6 for s in client.samples if s.slice in half and s.status > 0]
            for half in halves
        )
        ratios.append(percentile(second, 95) / percentile(first, 95))
    return {
        "halves": [sorted(h) for h in halves],
        **ratio_stats(ratios),
        "per_tenant": [round(r, 3) for r in ratios],
    }


def quantiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p95_ms": round(percentile(values, 95), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3),
    }


def counts(samples: list[Sample], phase: str) -> dict[str, int]:
    measured = [s for s in samples if s.slice >= 0 and SLICES[s.slice] == phase]
    out: dict[str, int] = {}
    for s in measured:
        key = {0: "timeout", -1: "error", -2: "not_sent"}.get(s.status, str(s.status))
        if s.refusal:
            key = f"429_{s.refusal}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def ratio_stats(ratios: list[float]) -> dict[str, float]:
    return {
        "worst": round(max(ratios), 3),
        "median": round(statistics.median(ratios), 3),
        "best": round(min(ratios), 3),
        "mean": round(statistics.fmean(ratios), 3),
    }


def phase_cpu(cpu: list[dict[str, float]], phase: str) -> dict[str, float]:
    rows = [r for r in cpu if r["phase"] == phase]
    seconds = len(rows) * (SLICE_S - SETTLE_S)
    parts = ("client", "server", "postgres", "other")
    out = {f"{p}_cores": round(sum(r[f"{p}_cpu_s"] for r in rows) / seconds, 3) for p in parts}
    out["machine_busy"] = round(statistics.fmean(r["machine_busy"] for r in rows), 3)
    return out


async def main(args: argparse.Namespace) -> None:
    from tenantry.db.session import Database
    from tenantry.identity import api_keys, users
    from tenantry.identity.schemas import ApiKeyCreate, UserCreate
    from tenantry.limits import service as limits
    from tenantry.settings import Settings
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate
    from tenantry.tenants.tiers import TIERS, LimitsPatch

    started = time.perf_counter()
    with temporary_stack("noisy") as stack:
        version = server_version(stack)
        home = stack.settings.home
        settings = Settings(home=home, demo_tenants=False, log_level="WARNING")
        db: Database = stack.database()
        slugs = [f"quiet-{n:02d}" for n in range(1, QUIET_TENANTS + 1)] + ["loud"]
        keys: dict[str, str] = {}
        for slug in slugs:
            rpm = LOUD_RPM if slug == "loud" else QUIET_RPM
            async with db.control() as session:
                tenant = await tenants.create(
                    session,
                    data=TenantCreate(slug=slug, name=slug.title(), tier=TIER),
                    actor="bench",
                    settings=settings,
                )
            async with db.control() as session:
                patch = LimitsPatch(requests_per_minute=rpm)
                await limits.set_overrides(session, slug=slug, patch=patch, actor="bench")
            async with db.tenant(tenant.id) as session:
                # A key works within the role of the user who made it.
                admin = await users.create(
                    session,
                    tenant_id=tenant.id,
                    data=UserCreate(
                        email=f"bench@{slug}.example", password="Bench-Admin-2026x", role="admin"
                    ),
                    actor="bench",
                    actor_role=None,
                )
                _, keys[slug] = await api_keys.create(
                    session,
                    tenant_id=tenant.id,
                    data=ApiKeyCreate(name="bench", scopes=["read"]),
                    actor="bench",
                    creator_id=admin.id,
                )
        await db.dispose()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_DATABASE_URL=stack.admin_url,
            TENANTRY_PORT=str(port),
            TENANTRY_LOG_LEVEL="WARNING",
            TENANTRY_DEMO_TENANTS="false",
        )
        log = home / "server.log"
        proc = start_server(__file__, env, log)
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        meter = Meter(proc.pid, postmaster)
        clients = {
            slug: Client(
                slug,
                port,
                encode_get(port, keys[slug]),
                LOUD_CONNECTIONS if slug == "loud" else QUIET_CONNECTIONS,
                skip_when_busy=slug == "loud",
            )
            for slug in slugs
        }
        quiet = [clients[s] for s in slugs[:-1]]
        loud = clients["loud"]
        try:
            await wait_until_up(f"http://127.0.0.1:{port}", proc, log)
            # Every tenant answers, with the limit its override sets.
            checks = {}
            for slug, client in clients.items():
                answer = await client.check()
                rpm = LOUD_RPM if slug == "loud" else QUIET_RPM
                if answer.status != 200 or f";q={rpm};".encode() not in answer.head:
                    raise SystemExit(f"{slug}: {answer.status}\n{answer.head.decode()}")
                checks[slug] = {"status": answer.status, "requests_per_minute": rpm}

            # Capacity: closed loop, one connection per quiet tenant (within its concurrency).
            loop_clients = quiet[:CONCURRENCY]
            await closed_loop(loop_clients, WARMUP_S)
            before = meter.snapshot()
            n, wall, statuses = await closed_loop(loop_clients, CAPACITY_S)
            capacity_cpu = Meter.delta(before, meter.snapshot())
            if set(statuses) != {200}:
                raise SystemExit(f"capacity run: answers {sorted(set(statuses))}")
            capacity = n / wall
            quiet_total = args.load_fraction * capacity
            quiet_rate = min(quiet_total / QUIET_TENANTS, 0.8 * QUIET_RPM / 60)
            loud_rate = LOUD_FACTOR * LOUD_RPM / 60
            print(
                f"capacity {capacity:.0f} req/s (closed loop, {CONCURRENCY} connections, "
                f"machine busy {capacity_cpu['machine_busy']:.0%}, other CPU "
                f"{capacity_cpu['other_cpu_s'] / wall:.2f} cores); quiet: {QUIET_TENANTS} x "
                f"{quiet_rate:.1f} req/s, loud: {loud_rate:.0f} req/s in B; slices {SLICES} "
                f"x {SLICE_S:.0f} s",
                flush=True,
            )
            cpu = await run_slices(quiet, loud, quiet_rate, loud_rate, meter)
            for client in clients.values():
                await client.close()
        finally:
            stop_server(proc)
        server_log = tail(log)

    report(
        version=version,
        capacity={
            "req_per_s": round(capacity, 1),
            "requests": n,
            "wall_s": round(wall, 3),
            "concurrency": CONCURRENCY,
            "cpu": {k: round(v, 3) for k, v in capacity_cpu.items()},
        },
        quiet_rate=quiet_rate,
        loud_rate=loud_rate,
        quiet=quiet,
        loud=loud,
        cpu=cpu,
        checks=checks,
        server_log=server_log,
        standard=TIERS[TIER].limits.model_dump(),
        load_fraction=args.load_fraction,
        wall_s=time.perf_counter() - started,
    )


def report(
    *,
    version: str,
    capacity: dict[str, Any],
    quiet_rate: float,
    loud_rate: float,
    quiet: list[Client],
    loud: Client,
    cpu: list[dict[str, float]],
    checks: dict[str, Any],
    server_log: str,
    standard: dict[str, int],
    load_fraction: float,
    wall_s: float,
) -> None:
    tenants: dict[str, Any] = {}
    ratios, sent_ratios = [], []
    for client in quiet:
        a, b = latencies_ms(client.samples, "A"), latencies_ms(client.samples, "B")
        a_sent = latencies_ms(client.samples, "A", sent=True)
        b_sent = latencies_ms(client.samples, "B", sent=True)
        qa, qb = quantiles(a), quantiles(b)
        ratio = qb["p95_ms"] / qa["p95_ms"]
        sent_ratio = percentile(b_sent, 95) / percentile(a_sent, 95)
        ratios.append(ratio)
        sent_ratios.append(sent_ratio)
        tenants[client.name] = {
            "A": {**qa, "answers": counts(client.samples, "A")},
            "B": {**qb, "answers": counts(client.samples, "B")},
            "p95_ratio_b_over_a": round(ratio, 3),
            "from_write": {
                "A": quantiles(a_sent),
                "B": quantiles(b_sent),
                "p95_ratio_b_over_a": round(sent_ratio, 3),
            },
            "most_in_flight": client.most_in_flight,
        }
    pooled = {
        phase: quantiles([v for c in quiet for v in latencies_ms(c.samples, phase)])
        for phase in ("A", "B")
    }
    loud_b = [s for s in loud.samples if s.slice >= 0 and SLICES[s.slice] == "B"]
    refused = [s.due_ns / 1e6 for s in loud_b if s.status == 429]
    refused_sent = [s.sent_ns / 1e6 for s in loud_b if s.status == 429]
    served = [s.due_ns / 1e6 for s in loud_b if s.status == 200]
    loud_counts = counts(loud.samples, "B")
    measured_s = SLICES.count("B") * (SLICE_S - SETTLE_S)
    cpu_a, cpu_b = phase_cpu(cpu, "A"), phase_cpu(cpu, "B")
    loud_offered = len(loud_b) / measured_s
    server_us_per_loud = (
        (cpu_b["server_cores"] - cpu_a["server_cores"]) / loud_offered * 1e6
        if loud_offered
        else None
    )
    quiet_total = quiet_rate * len(quiet)
    server_us_per_quiet = cpu_a["server_cores"] / quiet_total * 1e6
    loud_figures = {
        "offered_req_per_s": round(loud_offered, 1),
        "answers": loud_counts,
        "ok_200": sum(1 for s in loud_b if s.status == 200),
        "refused_429": len(refused),
        "timeouts": loud_counts.get("timeout", 0),
        "errors": loud_counts.get("error", 0),
        "not_sent_all_connections_busy": loud_counts.get("not_sent", 0),
        "latency_429": quantiles(refused),
        "latency_429_from_write": quantiles(refused_sent),
        "latency_200": quantiles(served),
        "most_in_flight": loud.most_in_flight,
        "server_cpu_us_per_quiet_request_in_a": round(server_us_per_quiet, 1),
        "server_cpu_us_per_loud_request": (
            round(server_us_per_loud, 1) if server_us_per_loud is not None else None
        ),
    }
    by_slice = []
    for row in cpu:
        index = row["slice"]
        lat = [
            s.due_ns / 1e6 for c in quiet for s in c.samples if s.slice == index and s.status > 0
        ]
        loud_here = [s for s in loud.samples if s.slice == index]
        by_slice.append(
            {
                "slice": index,
                "phase": SLICES[index],
                "quiet_p95_ms": round(percentile(lat, 95), 3) if lat else None,
                "loud_sent": sum(1 for s in loud_here if s.status != -2),
                "loud_not_sent": sum(1 for s in loud_here if s.status == -2),
                **{k: round(v, 3) for k, v in row.items() if k not in ("slice", "phase")},
            }
        )
    quiet_bad = {
        c.name: {k: v for k, v in t.items() if k != "200"}
        for c in quiet
        for t in (counts(c.samples, "A"), counts(c.samples, "B"))
        if set(t) - {"200"}
    }
    summary = {
        "p95_ratio": ratio_stats(ratios),
        "p95_ratio_from_write": ratio_stats(sent_ratios),
        "control_a_over_a": control_ratios(quiet, "A"),
        "control_b_over_b": control_ratios(quiet, "B"),
        "aim_worst_ratio_at_most": 1.2,
        "met": max(ratios) <= 1.2,
    }
    result = {
        "benchmark": "noisy_neighbor",
        "date": now_iso(),
        "machine": machine(),
        "postgresql": version,
        "server": {
            "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "workers": 1,
            "db_pool": "default settings (10 + 5 overflow)",
            "limits_storage": "memory (no Redis)",
            "timeout_keep_alive_s": SERVER_KEEP_ALIVE_S,
            "access_log": False,
            "log_level": "WARNING",
        },
        "settings": {
            "request": f"GET {PATH}, X-API-Key, HTTP/1.1 keep-alive (raw asyncio client)",
            "tier": TIER,
            "standard_tier_limits": standard,
            "quiet_tenants": len(quiet),
            "quiet_requests_per_minute_override": QUIET_RPM,
            "quiet_rate_per_tenant_req_per_s": round(quiet_rate, 2),
            "quiet_rate_total_req_per_s": round(quiet_rate * len(quiet), 1),
            "quiet_max_connections": QUIET_CONNECTIONS,
            "load_fraction_of_capacity": load_fraction,
            "loud_requests_per_minute_override": LOUD_RPM,
            "loud_factor": LOUD_FACTOR,
            "loud_rate_req_per_s": loud_rate,
            "loud_max_connections": LOUD_CONNECTIONS,
            "arrivals": "open-loop, fixed intervals, random phase per tenant (seed "
            f"{SEED}); latency from the moment a request was due",
            "slices": SLICES,
            "slice_s": SLICE_S,
            "settle_s": SETTLE_S,
            "measured_s_per_phase": SLICES.count("A") * (SLICE_S - SETTLE_S),
            "client_timeout_s": TIMEOUT,
        },
        "capacity": capacity,
        "summary": summary,
        "phases": {
            "A": {"quiet_pooled": pooled["A"], "cpu": cpu_a},
            "B": {"quiet_pooled": pooled["B"], "cpu": cpu_b},
        },
        "quiet_tenants": tenants,
        "quiet_non_200": quiet_bad,
        "loud_tenant": loud_figures,
        "by_slice": by_slice,
        "checks": checks,
        "server_log_tail": server_log,
        "wall_s": round(wall_s, 1),
    }
    path = write_json(OUTPUT, result)

    print()
    print(
        f"Noisy neighbour - uvicorn ({result['server']['uvicorn_loop']}, "
        f"{result['server']['uvicorn_http']}, 1 worker) on 127.0.0.1, PostgreSQL {version}, "
        f"{os.cpu_count()} cores; capacity {capacity['req_per_s']:.0f} req/s; "
        f"{len(quiet)} quiet tenants x {quiet_rate:.1f} req/s = {quiet_rate * len(quiet):.0f} "
        f"req/s ({load_fraction:.0%}); loud {loud_rate:.0f} req/s in B (limit {LOUD_RPM}/min); "
        f"slices {SLICES} x {SLICE_S:.0f} s ({SETTLE_S:.0f} s settling)"
    )
    print()
    rows = []
    for name, t in tenants.items():
        rows.append(
            [
                name,
                t["A"]["n"],
                t["A"]["p50_ms"],
                t["A"]["p95_ms"],
                t["B"]["n"],
                t["B"]["p50_ms"],
                t["B"]["p95_ms"],
                f"{t['p95_ratio_b_over_a']:.3f}",
                f"{t['from_write']['p95_ratio_b_over_a']:.3f}",
            ]
        )
    rows.append(
        [
            "all (pooled)",
            pooled["A"]["n"],
            pooled["A"]["p50_ms"],
            pooled["A"]["p95_ms"],
            pooled["B"]["n"],
            pooled["B"]["p50_ms"],
            pooled["B"]["p95_ms"],
            f"{pooled['B']['p95_ms'] / pooled['A']['p95_ms']:.3f}",
            "",
        ]
    )
    headers = ["tenant", "A n", "A p50", "A p95", "B n", "B p50", "B p95", "B/A p95", "(write)"]
    print(table(headers, rows))
    print()
    r, w = summary["p95_ratio"], summary["p95_ratio_from_write"]
    print(
        f"p95 B/A: worst {r['worst']:.3f}, median {r['median']:.3f}, best {r['best']:.3f} "
        f"(aim: worst <= 1.2 - {'met' if summary['met'] else 'NOT met'}); from the write: "
        f"worst {w['worst']:.3f}, median {w['median']:.3f}"
    )
    for phase in ("A", "B"):
        control = summary[f"control_{phase.lower()}_over_{phase.lower()}"]
        if control is not None:
            print(
                f"noise floor, p95 of slices {control['halves'][1]} over {control['halves'][0]} "
                f"({phase} only): worst {control['worst']:.3f}, median {control['median']:.3f}"
            )
    if quiet_bad:
        print(f"quiet tenants' answers other than 200: {quiet_bad}")
    lr, l200 = loud_figures["latency_429"], loud_figures["latency_200"]
    print(
        f"loud tenant (B): offered {loud_figures['offered_req_per_s']:.0f} req/s; answers "
        f"{loud_counts}; 429 p50 {lr['p50_ms']} ms, p95 {lr['p95_ms']} ms, max {lr['max_ms']} "
        f"ms; 200 p50 {l200['p50_ms']} ms, p95 {l200['p95_ms']} ms; timeouts "
        f"{loud_figures['timeouts']}, errors {loud_figures['errors']}, not sent "
        f"{loud_figures['not_sent_all_connections_busy']}; most in flight {loud.most_in_flight}"
    )
    print()
    print(
        table(
            ["phase", "client", "server", "postgres", "other", "busy"],
            [
                [
                    phase,
                    c["client_cores"],
                    c["server_cores"],
                    c["postgres_cores"],
                    c["other_cores"],
                    f"{c['machine_busy']:.0%}",
                ]
                for phase, c in (("A", cpu_a), ("B", cpu_b))
            ],
        )
    )
    print("(CPU in cores, i.e. CPU seconds per second)")
    print()
    span = SLICE_S - SETTLE_S
    print(
        table(
            ["slice", "quiet p95 ms", "loud sent", "not sent", "server", "other", "busy"],
            [
                [
                    f"{r['slice'] + 1} {r['phase']}",
                    r["quiet_p95_ms"],
                    r["loud_sent"],
                    r["loud_not_sent"],
                    r["server_cpu_s"] / span,
                    r["other_cpu_s"] / span,
                    f"{r['machine_busy']:.0%}",
                ]
                for r in by_slice
            ],
        )
    )
    if server_us_per_loud is not None:
        print(
            f"server CPU per loud request (B - A): {server_us_per_loud:.0f} us; per quiet "
            f"request (A): {server_us_per_quiet:.0f} us"
        )
    if cpu_a["other_cores"] > 0.1 or cpu_b["other_cores"] > 0.1:
        print("NOTE: other processes used the CPU meanwhile; the figures may be skewed.")
    if "Traceback" in server_log:
        print(f"server log:\n{server_log}")
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve_here()
    elif sys.argv[1:3] == ["--scenario", "upload-burst"]:
        # The second scenario (one tenant's upload burst) drives the whole stack: its own module.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from bench.upload_burst import main as upload_burst

        sys.argv[1:3] = []
        sys.exit(upload_burst())
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
        parser.add_argument(
            "--load-fraction",
            type=float,
            default=LOAD_FRACTION,
            help="share of the measured capacity the quiet tenants send (default %(default)s)",
        )
        # Variations, to find out what a result depends on; the defaults are the benchmark.
        parser.add_argument("--loud-factor", type=float, default=LOUD_FACTOR)
        parser.add_argument("--loud-connections", type=int, default=LOUD_CONNECTIONS)
        parser.add_argument("--slices", default=SLICES, help="A and B, in order")
        parser.add_argument("--slice-seconds", type=float, default=SLICE_S)
        parser.add_argument("--output", default=OUTPUT, help="file name under bench/results")
        arguments = parser.parse_args()
        if set(arguments.slices) != {"A", "B"}:
            parser.error("--slices needs both A and B")
        LOUD_FACTOR, LOUD_CONNECTIONS = arguments.loud_factor, arguments.loud_connections
        SLICES, SLICE_S, OUTPUT = arguments.slices, arguments.slice_seconds, arguments.output
        asyncio.run(main(arguments))
