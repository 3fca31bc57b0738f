"""`tenantry run` as an operator meets it: several API processes on uvloop sharing their limits,
one Ctrl-C that stops every process it started, a start after `kill -9` that finds what the dead
run left behind, and SIGTERM that drains before stopping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.runtime.supervisor import plan_processes
from tenantry.settings import Settings
from tests.runtime.helpers import (
    Run,
    fresh_home,
    gone,
    operator_headers,
    remove_home,
    tenant_key,
)
from tests.servers import free_port, require_binary, start_redis

pytestmark = pytest.mark.slow
MANUAL = "\n\n".join(
    f"Apartado {i}. " + "La bomba de calor necesita mantenimiento anual. " * 14 for i in range(120)
)

# `shutdown_grace_seconds` (20) plus the worker's watchdog margin (2), with room for a loaded machine.
DYING_BOUND_SECONDS = 30


def _named(processes, marker: str):
    return [p for p in processes if marker in _command(p)]


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # a short-lived process (a PostgreSQL backend) that has just ended
        return ""


def _samples(exposition: str) -> Counter:
    """A few sums over a scrape, keyed by (sample name, a label value or two)."""
    found: Counter = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "tenantry_tenant_requests_total":
                found[(sample.name, labels["tenant"], labels["code"])] += sample.value
            elif sample.name == "tenantry_rate_limited_total":
                found[(sample.name, labels["limit"])] += sample.value
            elif sample.name == "tenantry_db_pool_connections_max":
                found[(sample.name, labels["pool"])] += sample.value
    return found


def test_several_api_processes_on_uvloop_share_limits_and_one_ctrl_c_stops_everything():
    require_binary("redis-server", "redis-server")
    home = fresh_home()
    run = Run(home, TENANTRY_API_PROCESSES="2")
    try:
        assert "Ready: 2 API processes (uvloop, httptools) sharing limits through Redis" in run.text
        processes = run.tree()
        apis = _named(processes, "tenantry.runtime.api_process")
        assert len(apis) == 2
        assert all(p.environ()["TENANTRY_REDIS_URL"].startswith("unix://") for p in apis)
        served = httpx.get(f"{run.url}/health/detailed").json()["server"]
        assert served["loop"] == "uvloop" and served["http"] == "httptools"

        operators = operator_headers(run, run.bootstrap_token())
        key = tenant_key(run, operators, "amovil")
        limited = httpx.patch(
            f"{run.url}/v1/admin/tenants/amovil/limits",
            json={"requests_per_minute": 10},
            headers=operators,
        )
        assert limited.status_code == 200
        before = _samples(httpx.get(f"{run.url}/metrics").text)
        # A new connection per request: the kernel hands each to either process.
        statuses = [httpx.get(f"{run.url}/v1/me", headers=key).status_code for _ in range(14)]
        assert statuses.count(200) == 10 and statuses.count(429) == 4
        # /metrics adds up every process (multiprocess files), whichever process answers.
        for _ in range(4):
            scraped = _samples(httpx.get(f"{run.url}/metrics").text)
            for key_, added in (
                (("tenantry_tenant_requests_total", "amovil", "2xx"), 10),
                (("tenantry_rate_limited_total", "requests_per_minute"), 4),
            ):
                assert scraped[key_] - before[key_] == added, key_
            assert scraped[("tenantry_db_pool_connections_max", "worker")] > 0  # the worker's

        # Workflows in flight when Ctrl-C comes.
        writer = tenant_key(run, operators, "chogar")
        for n in range(3):
            created = httpx.post(
                f"{run.url}/v1/documents",
                json={"title": f"Manual {n}", "text": f"{n} {MANUAL}"},
                headers=writer,
            )
            assert created.status_code == 202, created.text
        processes = run.tree()
        for marker in ("tenantry.runtime.worker_process", "temporal", "redis-server", "postgres"):
            assert _named(processes, marker), marker
        assert run.stop(signal.SIGINT, timeout=120) == 0
        assert "Tenantry stopped." in run.text
        assert gone(processes) == []
    finally:
        run.cleanup()
        remove_home(home)


async def _in_flight_through_sigterm(run: Run, key: dict[str, str]) -> httpx.Response:
    """A request whose body is still arriving when SIGTERM comes: readiness turns 503 while
    new requests are still served, the socket closes, and the request in flight still finishes."""
    release = asyncio.Event()

    async def slow_body():
        yield b'{"title": "En vuelo", "text": "'
        await release.wait()
        yield b'La caldera pierde presion."}'

    async with httpx.AsyncClient(base_url=run.url, timeout=120) as http:
        upload = asyncio.create_task(
            http.post(
                "/v1/documents",
                content=slow_body(),
                headers={**key, "content-type": "application/json"},
            )
        )
        mark = len(run.lines)
        run.send(signal.SIGTERM)
        await asyncio.to_thread(run.wait_for, "draining: readiness answers 503", start=mark)
        async with httpx.AsyncClient(base_url=run.url) as fresh:
            ready = await fresh.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "draining"
            assert (await fresh.get("/v1/me", headers=key)).status_code == 200
        await asyncio.to_thread(run.wait_for, "stopped accepting", start=mark)
        # Refused, not queued in a backlog nobody accepts from: a proxy retries it elsewhere.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", run.port), timeout=5).close()
        release.set()  # the request in flight finishes after the socket has closed
        return await upload


def test_a_start_after_kill_9_handles_the_orphans_and_sigterm_drains_first():
    home = fresh_home()
    temporal_port = str(free_port())
    first = Run(home, TENANTRY_API_PROCESSES="1", TENANTRY_TEMPORAL_PORT=temporal_port)
    second = None
    try:
        token = first.bootstrap_token()
        before = first.tree()
        postmaster = first.postmaster()
        (temporal,) = _named(before, "temporal server start-dev")
        ours = _named(before, "tenantry.runtime.")
        assert len(ours) == 2  # one API process and the worker
        first.process.kill()
        first.process.wait(timeout=30)
        # They die with `tenantry run` (SIGTERM from the kernel), within their own shutdown
        # grace and the worker's watchdog after it: the bound the design promises.
        assert gone(ours, timeout=DYING_BOUND_SECONDS) == []  # they die with `tenantry run`...
        assert postmaster.is_running() and temporal.is_running()  # ...the services do not

        second = Run(
            home,
            TENANTRY_API_PROCESSES="1",
            TENANTRY_TEMPORAL_PORT=temporal_port,
            TENANTRY_DRAIN_SECONDS="5",
            TENANTRY_SHUTDOWN_GRACE_SECONDS="60",
        )
        assert f"Stopped the Temporal dev server (pid {temporal.pid})" in second.text
        assert f"Adopted PostgreSQL (pid {postmaster.pid})" in second.text
        assert not temporal.is_running() and second.postmaster().pid == postmaster.pid
        key = tenant_key(second, operator_headers(second, token))
        assert httpx.get(f"{second.url}/health/ready").status_code == 200

        processes = second.tree()
        finished = asyncio.run(_in_flight_through_sigterm(second, key))
        assert finished.status_code == 202, finished.text
        assert second.process.wait(timeout=120) == 0
        assert "Tenantry stopped." in second.text
        assert gone([*processes, postmaster]) == []
    finally:
        for run in (second, first):
            if run is not None:
                run.cleanup()
        remove_home(home)


def test_serve_runs_only_the_api_processes_and_stops_on_sigterm(stack):
    """`tenantry serve`, the containers' entry point: the session's PostgreSQL, Temporal and a
    Redis are external to it; it starts none of them, and no worker."""
    redis_dir = fresh_home()
    redis_dir.mkdir(parents=True)
    redis, redis_url = start_redis(redis_dir)
    serve = None
    try:
        serve = Run(
            Path(os.environ["TENANTRY_HOME"]),
            command="serve",
            keep_settings=True,
            TENANTRY_API_PROCESSES="2",
            TENANTRY_REDIS_URL=redis_url,
            TENANTRY_DRAIN_SECONDS="1",
        )
        assert (
            "Ready: 2 API processes (uvloop, httptools) sharing limits through Redis." in serve.text
        )
        children = psutil.Process(serve.process.pid).children(recursive=True)
        assert len(_named(children, "tenantry.runtime.api_process")) == 2
        for absent in ("worker_process", "temporal", "redis-server", "postgres"):
            assert not _named(children, absent), absent
        assert httpx.get(f"{serve.url}/health/ready").status_code == 200
        assert serve.stop(signal.SIGTERM, timeout=120) == 0
        assert "draining: readiness answers 503" in serve.text
        assert gone(children) == []
    finally:
        if serve is not None and serve.process.poll() is None:
            serve.process.kill()
        redis.terminate()
        redis.wait(timeout=10)
        remove_home(redis_dir)


def test_several_api_processes_need_redis_or_fall_back_to_one():
    settings = Settings(api_processes=4, redis_url=None)
    alone = plan_processes(settings, binary=None)
    assert alone.api_processes == 1 and alone.local_redis is None
    assert "TENANTRY_REDIS_URL is unset and no redis-server is installed" in alone.note
    local = plan_processes(settings, binary="/usr/bin/redis-server")
    assert (local.api_processes, local.local_redis) == (4, "/usr/bin/redis-server")
    external = plan_processes(settings.model_copy(update={"redis_url": "redis://r:6379/0"}), None)
    assert (external.api_processes, external.local_redis, external.note) == (4, None, None)
    assert plan_processes(Settings(api_processes=1), None).api_processes == 1
