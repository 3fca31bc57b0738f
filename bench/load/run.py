"""The multi-tenant load test, end to end. From the repository root:

    .venv/bin/python -m bench.load.run                 # the full test (see bench/load/README.md)
    .venv/bin/python -m bench.load.run --tenants 20 --identities 4 --steps 20:30   # a short one

1. Starts the whole stack as `make run` does (`tenantry run`: embedded PostgreSQL, Temporal's dev
   server, the worker, the API) in a temporary home with a known bootstrap token; or, with
   `--host URL --bootstrap-token TOKEN`, uses a running deployment.
2. Provisions the tenants through the admin API (`bench.load.provision`), limits raised.
3. Runs Locust headless (`bench/load/locustfile.py`): the offered rate steps up until p95 passes
   500 ms or errors pass 1% (or the steps run out).
4. Writes bench/results/load.json, prints the step table, and exits with the generator's code:
   1 on any foreign id, or when the reference step (10,000 requests a minute) did not hold p95 <
   500 ms and errors < 1% for every tenant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, machine, now_iso, table, write_json
from bench.load.provision import provision

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DEFAULT_STEPS = "20:60,40:60,80:60,120:60,167:60,250:60,333:60,500:60"
REFERENCE_RPS = 167  # seed 000: 10,000 requests a minute


def run_locust(
    *,
    plan: Path,
    report: Path,
    steps: str,
    enforce: bool,
    reference: float = REFERENCE_RPS,
    stop_at_break: bool = True,
    cpu: str = "",
    postmaster: int | None = None,
    timeout: float | None = None,
) -> tuple[int, dict[str, Any], str]:
    """Locust in a process of its own (it patches the standard library with gevent): its exit
    code, its report, and its output."""
    env = {
        **os.environ,
        "LOAD_PLAN": str(plan),
        "LOAD_REPORT": str(report),
        "LOAD_STEPS": steps,
        "LOAD_REFERENCE": str(reference),
        "LOAD_ENFORCE": "1" if enforce else "0",
        "LOAD_STOP_AT_BREAK": "1" if stop_at_break else "0",
        "LOAD_CPU": cpu,
        "LOAD_POSTMASTER": str(postmaster or ""),
    }
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    done = subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    if not report.exists():
        raise RuntimeError(f"locust wrote no report (exit {done.returncode}):\n{output[-4000:]}")
    return done.returncode, json.loads(report.read_text()), output


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _role(cmdline: str) -> str:
    """API processes, the worker, Temporal apart; `tenantry` is the supervisor (and anything else
    it starts), so the capacity model can size each on its own."""
    for marker, role in (
        ("temporal", "temporal"),
        ("tenantry.runtime.api_process", "api"),
        ("tenantry.runtime.worker_process", "worker"),
    ):
        if marker in cmdline:
            return role
    return "tenantry"


def stack_processes(root: int) -> str:
    """`name=pid,...` of `tenantry run` and its descendants, PostgreSQL's aside."""
    named, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "postgres" in cmdline.split(" ")[0]:
            continue
        named.append(f"{_role(cmdline)}={pid}")
        todo += _children(pid)
    return ",".join(named)


class LocalStack:
    """`tenantry run` in a temporary home, stopped (Ctrl-C, as a person would) and removed."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="tenantry-load-"))
        self.token = "tnop_load-" + secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            TENANTRY_HOME=str(self.home),
            TENANTRY_PORT=str(self.port),
            TENANTRY_TEMPORAL_PORT=str(free_port()),
            TENANTRY_BOOTSTRAP_TOKEN=self.token,
            TENANTRY_DEMO_TENANTS="false",
        )
        self.log = self.home / "tenantry.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tenantry.cli", "run"], env=env, stdout=out, stderr=out
            )

    def wait_ready(self, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"tenantry run exited:\n{self.log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"tenantry run not ready after {seconds} s")

    @property
    def postmaster(self) -> int:
        return int((self.home / "pgdata" / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def print_steps(report: dict[str, Any]) -> None:
    rows = []
    for s in report["steps"]:
        cores = s["cpu_cores"]
        rows.append(
            [
                s["step"],
                s["offered_rps"],
                s["achieved_rps"],
                s["p50_ms"],
                s["p95_ms"],
                s["p99_ms"],
                f"{s['worst_tenant']['p95_ms']} ({s['worst_tenant']['tenant']})",
                s["errors"],
                " ".join(f"{k}:{v}" for k, v in sorted(s["errors_by_status"].items())) or "-",
                " ".join(f"{k}:{v}" for k, v in sorted(cores.items())) or "-",
                s["ticket_backlog_max"],
            ]
        )
    print(
        table(
            [
                "step",
                "offered/s",
                "achieved/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "worst tenant p95",
                "errors",
                "by status",
                "CPU cores",
                "backlog",
            ],
            rows,
            left=0,
        )
    )
    ref = report["reference"]
    print()
    print(
        f"Highest step with p95 < 200 ms for every tenant: "
        f"{report['highest_rps_every_tenant_p95_under_200ms']} req/s; "
        f"breaking step: {report['breaking_step']}"
    )
    print(f"At {ref['offered_rps']} req/s (10,000 a minute): {json.dumps(ref)}")
    iso = report["isolation"]
    print(f"Isolation: {iso['ids_checked']} ids checked, {iso['foreign_ids']} foreign")
    print(f"Exit code {report['exit_code']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--identities", type=int, default=10, help="callers per tenant")
    parser.add_argument("--steps", default=DEFAULT_STEPS, help="rate:seconds,... (req/s)")
    parser.add_argument("--reference", type=float, default=REFERENCE_RPS)
    parser.add_argument("--no-stop-at-break", action="store_true")
    parser.add_argument("--host", help="a running deployment instead of a local stack")
    parser.add_argument(
        "--bootstrap-token",
        help="with --host: its bootstrap token, or an operator's access token once operators exist",
    )
    parser.add_argument("--output", default="load.json", help="under bench/results/")
    args = parser.parse_args()

    load_before = os.getloadavg()
    stack = None
    if args.host:
        if not args.bootstrap_token:
            parser.error("--host needs --bootstrap-token")
        url, token, cpu, postmaster = args.host.rstrip("/"), args.bootstrap_token, "", None
    else:
        stack = LocalStack()
    try:
        if stack is not None:
            stack.wait_ready()
            url, token = stack.url, stack.token
            cpu, postmaster = stack_processes(stack.proc.pid), stack.postmaster
        started = time.monotonic()
        plan = asyncio.run(provision(url, token, tenants=args.tenants, identities=args.identities))
        setup_s = time.monotonic() - started
        work = Path(tempfile.mkdtemp(prefix="tenantry-load-plan-"))
        (work / "plan.json").write_text(json.dumps(plan))
        code, report, output = run_locust(
            plan=work / "plan.json",
            report=work / "report.json",
            steps=args.steps,
            enforce=True,
            reference=args.reference,
            stop_at_break=not args.no_stop_at_break,
            cpu=cpu,
            postmaster=postmaster,
        )
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if stack is not None:
            stack.stop()
    result = {
        "benchmark": "load",
        "date": now_iso(),
        "machine": machine(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "target": args.host or "a local `tenantry run` (embedded PostgreSQL, Temporal, worker)",
        "steps_requested": args.steps,
        "identities_per_tenant": args.identities,
        "limit_overrides": plan["limit_overrides"],
        "setup_seconds": round(setup_s, 1),
        **report,
    }
    path = write_json(args.output, result)
    print_steps(result)
    print(f"JSON: {path}")
    if code != report["exit_code"]:
        print(output[-4000:])
    return code


if __name__ == "__main__":
    sys.exit(main())
