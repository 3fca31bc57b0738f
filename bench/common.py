"""Shared helpers for the benchmarks: a throw-away embedded stack, percentiles, JSON results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
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
