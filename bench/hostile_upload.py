"""Hostile upload: does one tenant's PDF bomb slow another tenant down?

Starts `tenantry run` (the whole local stack, as `make run` does) in a temporary home, with the
interpreter given by --python (so the same script measures an older checkout too). A quiet tenant
(`amovil`) sends `GET /v1/me` from CLIENTS connections, each waiting THINK seconds between
requests; its latency is measured for SECONDS alone (phase A), then while another tenant
(`chogar`) uploads a PDF of about 15 KB whose content stream inflates to 6 MB of drawing
operators, until that document is `failed` or `ready` and at least SECONDS have passed (phase B).

Reported: the quiet tenant's p50/p95/p99 and errors in each phase and the ratio of the p95s; how
long the bomb took to end and how it ended (status, reason); the CPU the stack used in each phase.
With --no-inflation-limit the PDF is read all the way (TENANTRY_EXTRACT_MAX_INFLATION raised), so
only the sandbox's time limit stops it: the worst case for the other tenants.

Run from the repository root:  .venv/bin/python bench/hostile_upload.py   (about 2 minutes)
Results: printed, and written to bench/results/hostile_upload.json (--output to change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import free_port, machine, now_iso, percentile
from tests.pdf import pdf_bomb

PASSWORD = "Correct-Horse-42-Battery"


def start_stack(python: str, home: Path, port: int, extra: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(
        TENANTRY_HOME=str(home),
        TENANTRY_PORT=str(port),
        TENANTRY_TEMPORAL_PORT=str(free_port()),
        TENANTRY_LOG_JSON="false",
        TENANTRY_LOG_LEVEL="WARNING",
        **extra,
    )
    return subprocess.Popen(
        [python, "-m", "tenantry.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until_ready(proc: subprocess.Popen, base: str, lines: list[str], home: Path) -> str:
    """The bootstrap token, once the stack is ready: in the file under the home the banner names."""
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("tenantry run exited:\n" + "".join(lines[-30:]))
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                token_file = home / "bootstrap_token"
                if "Operator bootstrap token in" in "".join(lines) and token_file.exists():
                    return token_file.read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("tenantry run not ready in 300 s")


def credentials(base: str, token: str) -> tuple[dict, dict]:
    admin = f"{base}/v1/admin"
    account = {"email": "bench@tenantry.dev", "name": "Bench", "password": PASSWORD}
    httpx.post(f"{admin}/operators", json=account, headers={"Authorization": f"Bearer {token}"})
    login = httpx.post(
        f"{admin}/auth/login", json={"email": account["email"], "password": PASSWORD}
    )
    ops = {"Authorization": f"Bearer {login.json()['access_token']}"}
    keys = {}
    for slug in ("amovil", "chogar"):
        email = f"bench@{slug}.example"
        httpx.post(
            f"{admin}/tenants/{slug}/users",
            json={"email": email, "password": PASSWORD, "role": "admin"},
            headers=ops,
        )
        access = httpx.post(
            f"{base}/v1/auth/login", json={"tenant": slug, "email": email, "password": PASSWORD}
        ).json()["access_token"]
        created = httpx.post(
            f"{base}/v1/api-keys",
            json={"name": "bench", "scopes": ["admin"]},
            headers={"Authorization": f"Bearer {access}"},
        )
        keys[slug] = {"X-API-Key": created.json()["key"]}
    # The quiet tenant must never meet its own limits: only its neighbour may slow it.
    httpx.patch(
        f"{admin}/tenants/amovil/limits",
        json={"requests_per_minute": 100_000, "concurrent_requests": 1000},
        headers=ops,
    )
    return keys["amovil"], keys["chogar"]


async def quiet_load(base: str, key: dict, clients: int, think: float, stop: asyncio.Event):
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    response = await http.get("/v1/me", headers=key)
                    if response.status_code != 200:
                        errors[str(response.status_code)] = (
                            errors.get(str(response.status_code), 0) + 1
                        )
                    latencies.append((time.perf_counter() - started) * 1000)
                except httpx.HTTPError as error:
                    errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                await asyncio.sleep(think)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors


def stack_cpu(root: psutil.Process, home: Path) -> float:
    processes = [root, *root.children(recursive=True)]
    try:
        pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        processes += [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        pass
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def measure(args, base: str, quiet: dict, loud: dict, root, home) -> dict:
    def summary(values: list[float], errors: dict, cpu: float, seconds: float) -> dict:
        return {
            "requests": len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1),
            "errors": errors,
            "seconds": round(seconds, 1),
            "stack_cpu_seconds": round(cpu, 1),
        }

    stop = asyncio.Event()
    cpu0, t0 = stack_cpu(root, home), time.monotonic()
    load = asyncio.create_task(quiet_load(base, quiet, args.clients, args.think, stop))
    await asyncio.sleep(args.seconds)
    stop.set()
    alone = await load
    phase_a = summary(*alone, stack_cpu(root, home) - cpu0, time.monotonic() - t0)

    stop = asyncio.Event()
    cpu0, t0 = stack_cpu(root, home), time.monotonic()
    load = asyncio.create_task(quiet_load(base, quiet, args.clients, args.think, stop))
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        uploaded = await http.post(
            "/v1/documents/upload",
            files={"file": ("plano.pdf", pdf_bomb(6_000_000), "application/pdf")},
            headers=loud,
        )
        if uploaded.status_code != 202:
            raise SystemExit(f"upload refused: {uploaded.status_code} {uploaded.text}")
        document = uploaded.json()
        status, ended = document.get("status"), None
        while True:
            await asyncio.sleep(0.5)
            seen = await http.get(f"/v1/documents/{document['id']}", headers=loud)
            if seen.status_code == 200:  # a stalled server may shed this poll: ask again
                document = seen.json()
            if ended is None and document["status"] in ("failed", "ready"):
                ended = time.monotonic() - t0
            if ended is not None and time.monotonic() - t0 >= args.seconds:
                break
            if time.monotonic() - t0 > args.max_seconds:
                break
        status = document["status"]
    stop.set()
    during = await load
    phase_b = summary(*during, stack_cpu(root, home) - cpu0, time.monotonic() - t0)
    return {
        "alone": phase_a,
        "during_bomb": phase_b,
        "p95_ratio": round(phase_b["p95_ms"] / phase_a["p95_ms"], 2),
        "bomb": {
            "upload_bytes": len(pdf_bomb(6_000_000)),
            "status": status,
            "seconds_to_end": round(ended, 1) if ended is not None else None,
            "error": document.get("error"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the checkout")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--api-processes", default="1")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--no-inflation-limit", action="store_true")
    parser.add_argument("--output", default="bench/results/hostile_upload.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="tenantry-bench-hostile-")) / "home"
    port = free_port()
    extra = {"TENANTRY_API_PROCESSES": args.api_processes}
    if args.no_inflation_limit:
        extra |= {
            "TENANTRY_EXTRACT_MAX_INFLATION": "1000000",
            "TENANTRY_EXTRACT_TIMEOUT_SECONDS": "30",
        }
    proc = start_stack(args.python, home, port, extra)
    lines: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        token = wait_until_ready(proc, base, lines, home)
        quiet, loud = credentials(base, token)
        result = asyncio.run(measure(args, base, quiet, loud, psutil.Process(proc.pid), home))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(home.parent, ignore_errors=True)
    report = {
        "benchmark": "hostile_upload",
        "when": now_iso(),
        "machine": machine(),
        "label": args.label,
        # The interpreter is named, not located: a results file names no path outside the repository.
        "settings": {k: v for k, v in vars(args).items() if k not in ("output", "python")},
        **result,
    }
    print(json.dumps(report, indent=2))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
