"""Failover: three API replicas behind deploy/nginx on loopback, under steady multi-tenant load,
while one is killed, one is frozen, and all three are restarted in turn.

    .venv/bin/python -m bench.failover                    # about 3 minutes
    .venv/bin/python -m bench.failover --rate 60 --freeze 10

1. An embedded PostgreSQL, Temporal's dev server and a Redis (as `make run` would start them),
   then three `tenantry serve` replicas (one API process each, the containers' entry point) on
   ports of their own, and nginx rendered from deploy/nginx/nginx.conf.template by
   deploy/tools/render_nginx.py in front of them (TLS with a self-signed certificate).
2. Tenants, users and API keys set up through one replica's admin API (not through nginx: its
   login zone allows 5 logins a minute per address).
3. Open-loop load through nginx at `--rate` requests a second (Poisson arrivals) from many
   simulated client addresses (X-Forwarded-For, nginx trusting 127.0.0.1 as the load balancer
   in front of it), over every tenant: reads of `me`, documents, incidents, configuration and
   usage, and 5% configuration writes (PATCH: nginx never resends those once they reached a
   replica).
4. Phases: a baseline; SIGKILL of every process of replica 1 (then it is started again, as
   Kubernetes would); SIGSTOP of replica 2 for `--freeze` seconds, then SIGCONT; a rolling
   restart (SIGTERM a replica, wait for it to exit, start it again, wait until it is ready,
   then the next).
5. For each phase: requests, failed requests (a 5xx or no answer), their share, p50/p99/max
   latency, and the time to recover: from the fault to the end of the last request it hurt
   (failed, or slower than `--slow-ms`). Written to bench/results/failover.json.

The aim (issue 14): under 0.5% failed requests and recovery under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import free_port, machine, now_iso, percentile, table, write_json
from bench.load.provision import operator_headers, provision_tenant
from deploy.tools.render_nginx import NginxValues, render
from tenantry.runtime.redis_local import LocalRedis, redis_binary
from tenantry.settings import Settings
from tenantry.stack import provision_defaults, start_database
from tenantry.worker.devserver import TemporalDevServer

REPO = Path(__file__).resolve().parents[1]
READS = (
    ("me", "GET", "/v1/me", 30),
    ("documents", "GET", "/v1/documents", 20),
    ("incidents", "GET", "/v1/incidents", 20),
    ("config", "GET", "/v1/config", 15),
    ("usage", "GET", "/v1/usage", 10),
)
WRITE_SHARE = 5  # percent: PATCH /v1/config


@dataclass
class Sample:
    started: float
    ended: float
    status: int  # 0: no answer (connection refused, reset, timed out)
    task: str
    problem: str = ""  # a 5xx's problem type, to tell shedding from a database out of reach

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class Phase:
    name: str
    started: float
    fault_at: float | None = None
    ended: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


class Replica:
    """One `tenantry serve` with one API process, on a port of its own."""

    def __init__(self, index: int, env: dict[str, str], logs: Path) -> None:
        self.index = index
        self.port = free_port()
        self.env = {**env, "TENANTRY_PORT": str(self.port)}
        self.log = logs / f"api-{index}.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tenantry.cli", "serve"],
                env=self.env,
                stdout=out,
                stderr=out,
                cwd=REPO,
            )

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def signal_all(self, sig: int) -> None:
        for process in self.tree():
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)

    async def ready(self, within: float = 120) -> float:
        """Seconds until its readiness answers 200."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() - started < within:
                if self.process.poll() is not None:
                    raise SystemExit(
                        f"replica {self.index} exited:\n{self.log.read_text()[-3000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    answer = await client.get(f"http://{self.address}/health/ready")
                    if answer.status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.1)
        raise SystemExit(f"replica {self.index} not ready after {within} s")

    def wait_exit(self, timeout: float = 60) -> float:
        started = time.monotonic()
        self.process.wait(timeout)
        return time.monotonic() - started


class Nginx:
    def __init__(self, workdir: Path, upstreams: list[str], **overrides: Any) -> None:
        self.binary = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin") or "nginx"
        self.workdir = workdir
        self.cert, key = workdir / "tls.crt", workdir / "tls.key"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(self.cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (workdir / "tmp").mkdir()
        self.port = free_port()
        self.values = NginxValues(
            upstreams=tuple(upstreams),
            server_name="localhost",
            https_listen=f"127.0.0.1:{self.port}",
            http_listen=f"127.0.0.1:{free_port()}",
            tls_cert=str(self.cert),
            tls_key=str(key),
            trusted_proxies=("127.0.0.1/32",),
            worker_processes="1",
            pid_file=str(workdir / "nginx.pid"),
            error_log=str(workdir / "error.log"),
            access_log=str(workdir / "access.log"),
            temp_dir=str(workdir / "tmp"),
            ssl_stapling=False,
            **overrides,
        )
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(render(self.values))

    def start(self) -> None:
        subprocess.run(
            [self.binary, "-c", str(self.conf), "-p", f"{self.workdir}/"],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [self.binary, "-c", str(self.conf), "-p", f"{self.workdir}/", "-s", "stop"],
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def failures(self) -> dict[str, int]:
        """nginx's answers of 500 and above, by status and what the replicas answered before it
        (`upstream_status`: one per replica tried, `-` for none), to tell why a request failed."""
        counts: dict[str, int] = {}
        for line in (self.workdir / "access.log").read_text().splitlines():
            entry = json.loads(line)
            if entry["status"] >= 500:
                key = f"{entry['status']} after {entry['upstream_status'] or '-'}"
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def errors(self) -> dict[str, int]:
        """nginx's error log by message (e.g. "no live upstreams", "Connection refused"), without
        the time, connection, client and request that vary from line to line."""
        counts: dict[str, int] = {}
        for line in (self.workdir / "error.log").read_text().splitlines():
            message = re.sub(r"^.*?\*\d+ ", "", line).split(", client:")[0]
            message = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", message)
            counts[message] = counts.get(message, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:12])


class Load:
    """Open-loop arrivals at `rate` per second; each request on its own task."""

    def __init__(self, url: str, cert: Path, callers: list[dict], rate: float, seed: int) -> None:
        self.url = url
        self.callers = callers
        self.rate = rate
        self.random = random.Random(seed)
        self.samples: list[Sample] = []
        self.stopping = asyncio.Event()
        context = ssl.create_default_context(cafile=str(cert))
        self.client = httpx.AsyncClient(
            base_url=url,
            verify=context,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.tasks: set[asyncio.Task] = set()

    def _pick(self) -> tuple[str, str, str, dict | None]:
        if self.random.randrange(100) < WRITE_SHARE:
            language = self.random.choice(["english", "spanish"])
            return "config_write", "PATCH", "/v1/config", {"language": language}
        roll = self.random.randrange(sum(w for *_, w in READS))
        for name, method, path, weight in READS:
            if roll < weight:
                return name, method, path, None
            roll -= weight
        raise AssertionError("unreachable")

    async def _one(self, caller: dict) -> None:
        task, method, path, body = self._pick()
        headers = {**caller["headers"], "X-Forwarded-For": caller["address"]}
        started = time.monotonic()
        problem = ""
        try:
            answer = await self.client.request(method, path, json=body, headers=headers)
            status = answer.status_code
            if status >= 500 and "problem+json" in answer.headers.get("content-type", ""):
                problem = answer.json().get("type", "").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        except httpx.TransportError:
            status = 0
        self.samples.append(Sample(started, time.monotonic(), status, task, problem))

    async def run(self) -> None:
        while not self.stopping.is_set():
            caller = self.random.choice(self.callers)
            task = asyncio.create_task(self._one(caller))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            await asyncio.sleep(self.random.expovariate(self.rate))
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def summarise(phase: Phase, samples: list[Sample], slow_ms: float) -> dict[str, Any]:
    inside = [s for s in samples if phase.started <= s.started < phase.ended]
    if not inside:
        return {"phase": phase.name, "requests": 0}
    failed = [s for s in inside if s.failed]
    latencies = [s.ms for s in inside]
    by_status: dict[str, int] = {}
    for s in inside:
        by_status[str(s.status)] = by_status.get(str(s.status), 0) + 1
    result = {
        "phase": phase.name,
        "seconds": round(phase.ended - phase.started, 1),
        "requests": len(inside),
        "failed": len(failed),
        "failed_percent": round(100 * len(failed) / len(inside), 3),
        "failed_by_task": _count(s.task for s in failed),
        "failed_by_problem": _count(f"{s.status} {s.problem or '-'}" for s in failed),
        "by_status": by_status,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        **phase.notes,
    }
    if phase.fault_at is not None:
        hurt = [s for s in inside if s.ended >= phase.fault_at and (s.failed or s.ms > slow_ms)]
        result["recovery_s"] = round(
            max((s.ended for s in hurt), default=phase.fault_at) - phase.fault_at, 2
        )
        result["hurt_requests"] = len(hurt)
    return result


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


async def scenario(args, replicas: list[Replica], load: Load) -> list[Phase]:
    phases: list[Phase] = []

    async def hold(seconds: float) -> None:
        await asyncio.sleep(seconds)  # the load runs meanwhile: this paces the scenario

    running = asyncio.create_task(load.run())
    await hold(args.warmup)

    baseline = Phase("baseline", time.monotonic())
    await hold(args.baseline)
    baseline.ended = time.monotonic()
    phases.append(baseline)

    killed = Phase("sigkill", time.monotonic())
    await hold(2)
    killed.fault_at = time.monotonic()
    replicas[0].signal_all(signal.SIGKILL)
    replicas[0].process.wait()
    await hold(args.down)
    replicas[0].start()
    killed.notes["replica_back_ready_s"] = round(await replicas[0].ready(), 2)
    await hold(args.settle)
    killed.ended = time.monotonic()
    phases.append(killed)

    frozen = Phase("sigstop", time.monotonic())
    await hold(2)
    frozen.fault_at = time.monotonic()
    replicas[1].signal_all(signal.SIGSTOP)
    await hold(args.freeze)
    replicas[1].signal_all(signal.SIGCONT)
    frozen.notes["frozen_s"] = args.freeze
    await hold(args.settle)
    frozen.ended = time.monotonic()
    phases.append(frozen)

    rolling = Phase("rolling_restart", time.monotonic())
    await hold(2)
    stops, readies = [], []
    for replica in replicas:
        replica.process.send_signal(signal.SIGTERM)
        stops.append(round(await asyncio.to_thread(replica.wait_exit), 2))
        replica.start()
        readies.append(round(await replica.ready(), 2))
    rolling.notes["stop_s"] = stops
    rolling.notes["start_to_ready_s"] = readies
    await hold(args.settle)
    rolling.ended = time.monotonic()
    phases.append(rolling)

    load.stopping.set()
    await running
    return phases


async def provision(url: str, token: str, tenants: int) -> list[dict]:
    callers = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        ops = await operator_headers(client, token)
        prefix = f"fo-{secrets.token_hex(3)}"
        for i in range(tenants):
            plan = await provision_tenant(
                client,
                ops,
                slug=f"{prefix}-{i:02d}",
                tier=("standard", "free", "enterprise")[i % 3],
                identities=2,
            )
            for n, caller in enumerate(plan["callers"]):
                callers.append(
                    {**caller, "tenant": plan["slug"], "address": f"198.51.{i}.{n + 10}"}
                )
    return callers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=40, help="requests a second through nginx")
    parser.add_argument("--tenants", type=int, default=12)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--baseline", type=float, default=20)
    parser.add_argument(
        "--down", type=float, default=10, help="seconds the killed replica stays down"
    )
    parser.add_argument("--freeze", type=float, default=10, help="seconds replica 2 stays frozen")
    parser.add_argument("--settle", type=float, default=10)
    parser.add_argument("--slow-ms", type=float, default=1000)
    parser.add_argument("--read-timeout", type=int, help="nginx proxy_read_timeout (s)")
    parser.add_argument(
        "--next-upstream-timeout", type=int, help="nginx proxy_next_upstream_timeout"
    )
    parser.add_argument("--drain", type=float, default=5, help="TENANTRY_DRAIN_SECONDS")
    parser.add_argument("--output", default="failover.json")
    args = parser.parse_args()

    for name in [n for n in os.environ if n.startswith("TENANTRY_")]:
        del os.environ[name]
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="tenantry-failover-"))
    work.chmod(0o755)
    home = work / "home"
    token = "tnop_failover-" + secrets.token_hex(16)
    settings = Settings(home=home, environment="test", demo_tenants=False, bootstrap_token=token)
    stack = start_database(settings)
    temporal = TemporalDevServer(home / "temporal", port=free_port())
    redis = LocalRedis(home, redis_binary() or "redis-server")
    replicas: list[Replica] = []
    nginx = None
    edge_failures: dict[str, dict[str, int]] = {}
    try:
        asyncio.run(provision_defaults(stack))
        temporal.launch()
        temporal_address = asyncio.run(temporal.start_launched())
        redis_url = redis.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_ENVIRONMENT="test",
            TENANTRY_DATABASE_URL=stack.admin_url,
            TENANTRY_TEMPORAL_ADDRESS=temporal_address,
            TENANTRY_REDIS_URL=redis_url,
            TENANTRY_API_PROCESSES="1",
            TENANTRY_DB_POOL_SIZE="5",
            TENANTRY_DB_MAX_OVERFLOW="5",
            TENANTRY_DRAIN_SECONDS=str(args.drain),
            TENANTRY_JWT_SECRET=secrets.token_hex(32),
            TENANTRY_LOG_LEVEL="WARNING",
            TENANTRY_DEMO_TENANTS="false",
            TENANTRY_TRUSTED_PROXIES='["127.0.0.1"]',
        )
        logs = work / "logs"
        logs.mkdir()
        replicas = [Replica(i + 1, env, logs) for i in range(3)]
        for replica in replicas:
            replica.start()
        for replica in replicas:
            asyncio.run(replica.ready())
        overrides = {}
        if args.read_timeout:
            overrides["read_timeout_s"] = args.read_timeout
        if args.next_upstream_timeout:
            overrides["next_upstream_timeout_s"] = args.next_upstream_timeout
        (work / "nginx").mkdir()
        nginx = Nginx(work / "nginx", [r.address for r in replicas], **overrides)
        nginx.start()
        callers = asyncio.run(provision(f"http://{replicas[2].address}", token, args.tenants))

        async def measure() -> tuple[list[Phase], list[Sample]]:
            load = Load(nginx.url, nginx.cert, callers, args.rate, seed=14)
            phases = await scenario(args, replicas, load)
            return phases, load.samples

        phases, samples = asyncio.run(measure())
        edge_failures = {"by_status": nginx.failures(), "error_log": nginx.errors()}
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    replica.process.wait(30)
        redis.stop()
        temporal.stop()
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)

    # "Hurt" is relative to this machine at this moment: slower than --slow-ms, or than twice the
    # baseline's p99 if that is higher (a shared machine's baseline may itself be slow).
    baseline = summarise(phases[0], samples, args.slow_ms)
    slow_ms = max(args.slow_ms, 2 * baseline["p99_ms"])
    report = [summarise(p, samples, slow_ms) for p in phases]
    total_failed = sum(r["failed"] for r in report)
    total = sum(r["requests"] for r in report)
    faults = [r for r in report if "recovery_s" in r]
    result = {
        "benchmark": "failover",
        "date": now_iso(),
        "machine": machine(),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "command": "python -m bench.failover " + " ".join(sys.argv[1:]),
        "setup": {
            "replicas": "3 x `tenantry serve` (TENANTRY_API_PROCESSES=1, uvloop, httptools)",
            "edge": "nginx from deploy/nginx/nginx.conf.template (render_nginx.py), TLS on loopback",
            "nginx_timeouts_s": {
                "connect": nginx.values.connect_timeout_s,
                "read": nginx.values.read_timeout_s,
                "next_upstream": nginx.values.next_upstream_timeout_s,
                "max_fails": nginx.values.max_fails,
                "fail_timeout": nginx.values.fail_timeout_s,
            },
            "drain_seconds": args.drain,
            "rate_per_s": args.rate,
            "tenants": args.tenants,
            "callers": len(callers),
            "mix_percent": {
                **{n: w * (100 - WRITE_SHARE) / 100 for n, _, _, w in READS},
                "config_write": WRITE_SHARE,
            },
            "slow_ms": slow_ms,
        },
        "phases": report,
        "edge_failures": edge_failures,
        "total": {
            "requests": total,
            "failed": total_failed,
            "failed_percent": round(100 * total_failed / max(total, 1), 3),
            "worst_recovery_s": max((r["recovery_s"] for r in faults), default=0),
        },
        "aim": {"failed_percent_under": 0.5, "recovery_s_under": 5},
    }
    result["aim"]["met"] = (
        result["total"]["failed_percent"] < 0.5 and result["total"]["worst_recovery_s"] < 5
    )
    path = write_json(args.output, result)
    rows = [
        [
            r["phase"],
            r["requests"],
            r["failed"],
            r["failed_percent"],
            r["p50_ms"],
            r["p99_ms"],
            r["max_ms"],
            r.get("recovery_s", "-"),
        ]
        for r in report
    ]
    print(
        table(
            ["phase", "requests", "failed", "failed %", "p50 ms", "p99 ms", "max ms", "recovery s"],
            rows,
            left=1,
        )
    )
    print(f"total: {result['total']}; aim met: {result['aim']['met']}")
    print(f"JSON: {path}")
    return 0 if result["aim"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
