"""Shared helpers for the benchmarks: a throw-away embedded stack, percentiles, JSON results."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tenantry.db.urls import libpq_dsn
from tenantry.settings import Settings
from tenantry.stack import Stack, start_database

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def temporary_stack(prefix: str) -> Iterator[Stack]:
    """An embedded PostgreSQL in a fresh temporary home, migrated; stopped and removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix=f"tenantry-bench-{prefix}-"))
    # Only what we pass counts: no TENANTRY_* variable may point the bench at another database.
    for name in [n for n in os.environ if n.startswith("TENANTRY_")]:
        del os.environ[name]
    settings = Settings(home=home, environment="test", demo_tenants=False, log_json=False)
    stack = start_database(settings)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


def admin_connect(stack: Stack) -> psycopg.Connection:
    """A superuser connection to the `tenantry` database, in autocommit mode."""
    return psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True)


def server_version(stack: Stack) -> str:
    with admin_connect(stack) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p95, p99 and mean of nanosecond samples, in milliseconds."""
    ms = [s / 1e6 for s in samples_ns]
    return {
        "p50_ms": round(percentile(ms, 50), 4),
        "p95_ms": round(percentile(ms, 95), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "mean_ms": round(statistics.fmean(ms), 4),
        "n": len(ms),
    }


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "psycopg": psycopg.__version__,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1) -> str:
    """A plain, aligned text table; the first `left` columns left-aligned, the others right."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


# The API under uvicorn in a subprocess, and the CPU each part of the machine spends meanwhile.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def serve(*, timeout_keep_alive: int = 5) -> None:
    """The server process: `create_app()` from TENANTRY_* variables under uvicorn, no access log."""
    import uvicorn

    from tenantry.app import create_app
    from tenantry.observability.logging import configure_logging
    from tenantry.settings import get_settings

    settings = get_settings()
    # As `tenantry run` does: without it structlog's default prints every request's access line.
    configure_logging(level=settings.log_level, json=settings.log_json)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=timeout_keep_alive,
    )
    uvicorn.Server(config).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu(postmaster: int) -> float:
    """CPU of the postmaster and all its children (backends, checkpointer, walwriter...)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == postmaster:
            # Children that exited (autovacuum workers...) are counted in cutime and cstime.
            total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    line = Path("/proc/stat").read_text().split("\n", 1)[0]
    values = [int(v) for v in line.split()[1:9]]  # guest time is already counted in user
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Meter:
    """CPU of the client, the server and PostgreSQL, and how busy the machine was, over a span."""

    def __init__(self, server_pid: int, postmaster: int) -> None:
        self.server_pid, self.postmaster = server_pid, postmaster

    def snapshot(self) -> tuple[float, float, float, tuple[int, int]]:
        return (
            time.process_time(),
            cpu_seconds(self.server_pid),
            postgres_cpu(self.postmaster),
            machine_busy(),
        )

    @staticmethod
    def delta(before: tuple, after: tuple) -> dict[str, float]:
        busy = after[3][0] - before[3][0]
        total = after[3][1] - before[3][1]
        ours = {
            "client_cpu_s": after[0] - before[0],
            "server_cpu_s": after[1] - before[1],
            "postgres_cpu_s": after[2] - before[2],
        }
        # Whatever else kept the cores busy meanwhile (other processes, the kernel).
        other = max(0.0, busy / CLOCK_TICKS - sum(ours.values()))
        return {**ours, "other_cpu_s": other, "machine_busy": busy / total if total else 0.0}


def start_server(script: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python <script> --serve` with `env`, its output to `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, script, "--serve"], env=env, stdout=out, stderr=out
        )


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(log: Path) -> str:
    return log.read_text()[-4000:]


async def raw_load(
    port: int, path: str, headers: dict[str, str], n: int, concurrency: int
) -> tuple[float, list[int], int]:
    """`n` GETs over `concurrency` keep-alive connections with a minimal HTTP/1.1 client (a
    pre-encoded request, so the client costs far less CPU than the server it measures).

    Returns (wall seconds, latencies in ns, answers other than 200)."""
    lines = [f"GET {path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    remaining, latencies, bad = n, [], 0

    async def worker() -> None:
        nonlocal remaining, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter_ns()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter_ns() - start)
                if head[9:12] != b"200":
                    bad += 1
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, bad


async def wait_until_up(base: str, proc: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited ({proc.returncode}):\n{tail(log)}")
            try:
                if (await client.get("/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit(f"server not up after 60 s:\n{tail(log)}")


async def filled_tenant(db, settings, *, slug: str, users: int, chunks: int, per_document: int):
    """An enterprise tenant with `users` members and `chunks` chunks (384-d vectors) in documents
    of `per_document`: the tenant the backup and move benchmarks copy."""
    from tenantry.identity import users as identity_users
    from tenantry.identity.schemas import UserCreate
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate
    from tests.ops.fill import add_chunks

    async with db.control() as session:
        tenant = await tenants.create(
            session,
            data=TenantCreate(slug=slug, name="Bench", tier="enterprise"),
            actor="bench",
            settings=settings,
        )
    for n in range(users):
        async with db.tenant(tenant.id) as session:
            await identity_users.create(
                session,
                tenant_id=tenant.id,
                data=UserCreate(
                    email=f"u{n}@example.com", password="Correct-Horse-42-Battery", role="member"
                ),
                actor="bench",
                actor_role=None,
            )
    await add_chunks(
        db, tenant.id, documents=chunks // per_document, chunks_per_document=per_document
    )
    return tenant
