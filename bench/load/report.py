"""The load test's bookkeeping: requests by step and tenant, and the report with its verdict.

Kept free of Locust (the generator imports it; so can tests).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from bench.common import cpu_seconds, percentile, postgres_cpu

P95_LIMIT_MS = 500.0  # seed 004, per tenant, enforced
ERROR_LIMIT = 0.01  # seed 004, per tenant, enforced
P95_TARGET_MS = 200.0  # seed 000, per tenant, reported

Record = tuple[str, str, float, int, bool]  # tenant, request name, ms, status, failed


class StepLog:
    """Which step is running, and every request filed under the step it started in."""

    def __init__(self, steps: list[tuple[float, float]]) -> None:
        self.steps = steps
        self.index = -1
        self.rate = 0.0
        self.started: list[float] = []
        self.ended: list[float] = []
        self.records: list[list[Record]] = []
        self.cpu_marks: list[dict[str, float]] = []
        self.backlogs: list[int] = []
        self.backlog = 0
        self.foreign_answers = 0
        self.broke_at: int | None = None
        self.cpu: Callable[[], dict[str, float]] | None = None

    def advance(self, run_time: float, *, stop_at_break: bool) -> int | None:
        """The step due at `run_time` (seconds since the start); None once the test is over."""
        due, elapsed = None, 0.0
        for i, (_, seconds) in enumerate(self.steps):
            if run_time < elapsed + seconds:
                due = i
                break
            elapsed += seconds
        if due == self.index:
            return due
        if self.index >= 0:
            self._close()
            if stop_at_break and broken(self.records[self.index]):
                self.broke_at = self.index
                due = None
        if due is None:
            self.rate = 0.0
            self.index = len(self.steps)  # stays over
            return None
        self._open(due)
        return due

    def _open(self, i: int) -> None:
        self.index, self.rate = i, self.steps[i][0]
        self.started.append(time.time())
        self.records.append([])
        self.backlog = 0
        self.cpu_marks.append(self.cpu() if self.cpu else {})

    def _close(self) -> None:
        self.ended.append(time.time())
        self.backlogs.append(self.backlog)
        self.cpu_marks.append(self.cpu() if self.cpu else {})

    def record(
        self, started_at: float, tenant: str, name: str, ms: float, status: int, failed: bool
    ):
        step = 0
        for i, began in enumerate(self.started):
            if began <= started_at:
                step = i
        if self.records:
            self.records[step].append((tenant, name, ms, status, failed))

    def foreign(self, count: int) -> None:
        self.foreign_answers += count


def broken(records: list[Record]) -> bool:
    """Past seed 004's line for the whole step: p95 over 500 ms or more than 1% errors."""
    if not records:
        return False
    p95 = percentile([r[2] for r in records], 95)
    errors = sum(1 for r in records if r[4]) / len(records)
    return p95 > P95_LIMIT_MS or errors > ERROR_LIMIT


def cpu_snapshot(processes: str, postmaster: str | None) -> dict[str, float]:
    """CPU seconds so far of each `name=pid`, of PostgreSQL, and of this generator."""
    seen: dict[str, float] = {}
    for part in filter(None, processes.split(",")):
        name, pid = part.split("=")
        try:
            seen[name] = seen.get(name, 0.0) + cpu_seconds(int(pid))
        except OSError:
            continue
    if postmaster:
        seen["postgres"] = postgres_cpu(int(postmaster))
    seen["generator"] = time.process_time()
    return seen


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1) if values else 0.0


def per_tenant(records: list[Record]) -> dict[str, dict[str, float]]:
    by_tenant: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_tenant[r[0]].append(r)
    return {
        tenant: {
            "requests": len(rows),
            "p95_ms": _ms([r[2] for r in rows], 95),
            "error_rate": round(sum(1 for r in rows if r[4]) / len(rows), 4),
        }
        for tenant, rows in by_tenant.items()
    }


def step_summary(log: StepLog, i: int) -> dict[str, Any]:
    records = log.records[i]
    seconds = (log.ended[i] if i < len(log.ended) else time.time()) - log.started[i]
    times = [r[2] for r in records]
    tenants = per_tenant(records)
    worst = max(tenants.items(), key=lambda kv: kv[1]["p95_ms"], default=("", {"p95_ms": 0.0}))
    failed = [r for r in records if r[4]]
    by_task: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_task[r[1]].append(r)
    start, end = log.cpu_marks[2 * i], (log.cpu_marks[2 * i + 1 : 2 * i + 2] or [{}])[0]
    cpu = {k: round(end[k] - start[k], 2) for k in start if k in end}
    return {
        "step": i + 1,
        "offered_rps": log.steps[i][0],
        "seconds": round(seconds, 1),
        "requests": len(records),
        "achieved_rps": round(len(records) / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": _ms(times, 50),
        "p95_ms": _ms(times, 95),
        "p99_ms": _ms(times, 99),
        "worst_tenant": {"tenant": worst[0], "p95_ms": worst[1]["p95_ms"]},
        "tenants_p95_over_200ms": sum(1 for t in tenants.values() if t["p95_ms"] >= P95_TARGET_MS),
        "errors": len(failed),
        "error_rate": round(len(failed) / len(records), 4) if records else 0.0,
        "errors_by_status": dict(Counter(str(r[3]) for r in failed)),
        "status_5xx": sum(1 for r in records if r[3] >= 500),
        "by_task": {
            name: {
                "requests": len(rows),
                "p95_ms": _ms([r[2] for r in rows], 95),
                "errors": sum(1 for r in rows if r[4]),
            }
            for name, rows in sorted(by_task.items())
        },
        "cpu_seconds": cpu,
        "cpu_cores": {k: round(v / seconds, 2) for k, v in cpu.items()} if seconds > 0 else {},
        "ticket_backlog_max": log.backlogs[i] if i < len(log.backlogs) else log.backlog,
        "per_tenant": tenants,
    }


def build_report(
    log: StepLog,
    *,
    ledger,
    reference: float,
    enforce: bool,
    tenants: int,
    callers: int,
    mix: dict[str, int],
) -> dict[str, Any]:
    """Everything measured, the verdicts, and the exit code.

    The exit code fails on any foreign id; with `enforce`, also unless the reference step ran and
    held p95 < 500 ms and errors < 1% for every tenant; without it (the smoke), on any 5xx.
    """
    steps = [step_summary(log, i) for i in range(len(log.started))]
    holding = [s for s in steps if s["requests"] and s["tenants_p95_over_200ms"] == 0]
    ref = next((s for s in steps if abs(s["offered_rps"] - reference) < 0.5), None)
    verdict: dict[str, Any] = {"offered_rps": reference, "reached": ref is not None}
    if ref is not None:
        verdict |= {
            "every_tenant_p95_under_500ms": all(
                t["p95_ms"] < P95_LIMIT_MS for t in ref["per_tenant"].values()
            ),
            "every_tenant_errors_under_1pct": all(
                t["error_rate"] < ERROR_LIMIT for t in ref["per_tenant"].values()
            ),
            "every_tenant_p95_under_200ms": ref["tenants_p95_over_200ms"] == 0,
            "worst_tenant": ref["worst_tenant"],
        }
    foreign = len(ledger.foreign) + log.foreign_answers
    status_5xx = sum(s["status_5xx"] for s in steps)
    passed_thresholds = bool(
        ref
        and verdict["every_tenant_p95_under_500ms"]
        and verdict["every_tenant_errors_under_1pct"]
    )
    if foreign:
        exit_code = 1
    elif enforce:
        exit_code = 0 if passed_thresholds else 1
    else:
        exit_code = 1 if status_5xx else 0
    return {
        "tenants": tenants,
        "callers": callers,
        "mix_percent": mix,
        "steps": steps,
        "breaking_step": None if log.broke_at is None else log.broke_at + 1,
        "highest_rps_every_tenant_p95_under_200ms": max(
            (s["offered_rps"] for s in holding), default=None
        ),
        "reference": verdict,
        "thresholds": {
            "enforced": "p95 < 500 ms and errors < 1% for every tenant at the reference rate",
            "reported": "p95 < 200 ms for every tenant at the reference rate",
        },
        "totals": {
            "requests": sum(s["requests"] for s in steps),
            "status_5xx": status_5xx,
            "errors_by_status": dict(
                sum((Counter(s["errors_by_status"]) for s in steps), Counter())
            ),
            "requests_by_task": dict(
                sum(
                    (Counter({k: v["requests"] for k, v in s["by_task"].items()}) for s in steps),
                    Counter(),
                )
            ),
        },
        "isolation": {
            "ids_checked": len(ledger.owner),
            "foreign_ids": foreign,
            "examples": ledger.foreign[:10],
        },
        "exit_code": exit_code,
    }
