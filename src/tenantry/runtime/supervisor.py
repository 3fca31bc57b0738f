"""`tenantry run`: start the local stack, supervise its processes, and stop them in order.

Processes: PostgreSQL (embedded, or external), the Temporal dev server (unless
TENANTRY_TEMPORAL_ADDRESS names one), Redis when several API processes need it, the worker, and
TENANTRY_API_PROCESSES API processes sharing one listening socket. The supervisor itself serves
no request and runs no tenant work.

Stopping: one Ctrl-C (SIGINT) stops everything within about ten seconds, whatever state Temporal
is in: API processes and the worker get a few seconds, then are killed; then Temporal and Redis;
then PostgreSQL. SIGTERM first drains the API processes (readiness 503, in-flight requests
finish within the grace period). A second Ctrl-C kills at once. After a crash, the next start
stops the services the dead run left behind, or adopts PostgreSQL (see `pidfiles.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psycopg
import structlog
import typer
from prometheus_client.multiprocess import mark_process_dead

from tenantry.db.urls import app_url, libpq_dsn
from tenantry.identity.bootstrap import Bootstrap
from tenantry.observability.exposition import MULTIPROC_ENV
from tenantry.runtime.children import spawn
from tenantry.runtime.pidfiles import SUPERVISOR, PidRegistry
from tenantry.runtime.redis_local import LocalRedis, redis_binary
from tenantry.settings import Settings
from tenantry.stack import FirstStart, Stack, provision_defaults, start_database
from tenantry.worker.devserver import TemporalDevServer, tenant_workflows_url

log = structlog.get_logger("tenantry.run")
READY_TIMEOUT_SECONDS = 180
INTERRUPT_CHILDREN_SECONDS = 5
SERVICE_STOP_SECONDS = 2
MAX_RESTARTS = 5
# Connections kept aside on the server: superuser slots, the worker, CLI commands, upkeep.
RESERVED_CONNECTIONS = 20


@dataclass
class Child:
    name: str
    module: str
    args: list[str]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen | None = None
    ready_fd: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class Plan:
    api_processes: int
    local_redis: str | None  # the redis-server binary to start, if any
    note: str | None = None


def plan_processes(settings: Settings, binary: str | None) -> Plan:
    """How many API processes, and whether a local Redis must be started for them to share
    their limits. Several processes without Redis would each apply a tenant's limits alone."""
    wanted = settings.api_processes
    if wanted == 1 or settings.redis_url:
        return Plan(wanted, None)
    if binary:
        return Plan(wanted, binary)
    return Plan(
        1,
        None,
        f"TENANTRY_API_PROCESSES={wanted}, but API processes share their limits only through "
        "Redis: TENANTRY_REDIS_URL is unset and no redis-server is installed. Serving the API "
        "from one process.",
    )


@dataclass
class Supervisor:
    """`services=True`: `tenantry run`, the whole local stack. `services=False`: `tenantry serve`,
    only the API processes, against a PostgreSQL, Temporal and Redis that run elsewhere (the
    container entry point); no worker, no migrations, nothing recorded under the home."""

    settings: Settings
    services: bool = True
    registry: PidRegistry = field(init=False)
    stack: Stack | None = None
    devserver: TemporalDevServer | None = None
    redis: LocalRedis | None = None
    listener: socket.socket | None = None
    children: list[Child] = field(default_factory=list)
    plan: Plan | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop_mode: str | None = None
    wake: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.registry = PidRegistry(self.settings.home)

    def run(self) -> int:
        # Local services (PostgreSQL, Temporal, Redis) belong to one run per home; a run whose
        # services are all external may share its home with others (several API hosts).
        settings = self.settings
        owns_services = self.services and (
            settings.embedded
            or settings.temporal_address is None
            or (settings.api_processes > 1 and not settings.redis_url)
        )
        if owns_services:
            self.registry.claim()
        signal.signal(signal.SIGTERM, _interrupt_startup)
        code = 0
        try:
            if owns_services:
                for line in self.registry.stop_orphans():
                    typer.echo(line)
            first = self._start_services() if self.services else self._external_only()
            self._start_children()
            self._banner(first)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, self._on_signal)
            code = self._supervise()
        except KeyboardInterrupt:
            self.stop_mode = self.stop_mode or "interrupt"
        finally:
            signal.signal(signal.SIGINT, self._on_signal)  # a second Ctrl-C: kill at once
            self._stop_all()
            if owns_services:
                self.registry.forget(SUPERVISOR)
            typer.echo("Tenantry stopped.")
        return code

    # Starting -----------------------------------------------------------------------------

    def _start_services(self) -> FirstStart:
        settings = self.settings
        self.stack = start_database(settings)
        embedded = self.stack.embedded
        if embedded is not None and embedded.adopted_pid:
            typer.echo(
                f"Adopted PostgreSQL (pid {embedded.adopted_pid}), left running by an earlier "
                "`tenantry run` that did not stop cleanly; it stops with this one."
            )
        first = asyncio.run(provision_defaults(self.stack))
        if settings.temporal_address is None:
            self.devserver = TemporalDevServer(
                settings.home / "temporal",
                port=settings.temporal_port,
                ui_port=(settings.temporal_ui_port or settings.temporal_port + 1000)
                if settings.temporal_ui
                else None,
            )
            self.devserver.launch()
            self.registry.record("temporal", self.devserver.process.pid, "the Temporal dev server")
            address = asyncio.run(self.devserver.start_launched())
            # Started again if it lost a port race: the process to stop is the one now serving.
            self.registry.record("temporal", self.devserver.process.pid, "the Temporal dev server")
            self.settings = settings = with_local_temporal(
                settings, address=address, ui_url=self.devserver.ui_url
            )
        plan = plan_processes(settings, redis_binary())
        if plan.note:
            typer.echo(plan.note)
            log.warning("one API process", reason=plan.note)
        if plan.local_redis:
            self.redis = LocalRedis(settings.home, plan.local_redis)
            url = self.redis.start()
            self.registry.record("redis", self.redis.process.pid, "the local Redis")
            self.settings = settings.model_copy(update={"redis_url": url})
        self.plan = plan
        return first

    def _external_only(self) -> FirstStart:
        settings = self.settings
        if not (settings.database_url or settings.app_database_url):
            raise RuntimeError(
                "`tenantry serve` needs TENANTRY_DATABASE_URL (or TENANTRY_APP_DATABASE_URL); "
                "`tenantry run` starts a local stack instead."
            )
        self.plan = plan_processes(settings, binary=None)  # no local Redis in this mode
        if self.plan.note:
            typer.echo(self.plan.note)
            log.warning("one API process", reason=self.plan.note)
        return FirstStart(None, ())

    def _child_env(self) -> dict[str, str]:
        settings, stack = self.settings, self.stack
        database = stack.admin_url if stack else _application_dsn(settings)
        pool, overflow = _pool_sizes(database, self.plan.api_processes, settings)
        env = dict(os.environ)
        env.update(
            TENANTRY_HOME=str(settings.home),
            TENANTRY_API_PROCESSES=str(self.plan.api_processes),
            TENANTRY_DB_POOL_SIZE=str(pool),
            TENANTRY_DB_MAX_OVERFLOW=str(overflow),
        )
        if stack is not None:
            env["TENANTRY_DATABASE_URL"] = stack.admin_url
        if settings.temporal_address:
            env["TENANTRY_TEMPORAL_ADDRESS"] = settings.temporal_address
        if settings.redis_url:
            env["TENANTRY_REDIS_URL"] = settings.redis_url
        if settings.temporal_ui_url:
            env["TENANTRY_TEMPORAL_UI_URL"] = settings.temporal_ui_url
        # Every child counts into files here; whichever API process answers /metrics adds them
        # up (see observability.exposition). Emptied at each start: counters begin at zero.
        metrics = settings.home / "metrics"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir(parents=True)
        env[MULTIPROC_ENV] = str(metrics)
        return env

    def _start_children(self) -> None:
        self.env = self._child_env()
        self.listener = _listen(self.settings.host, self.settings.port)
        fd = self.listener.fileno()
        if self.services and self.settings.run_worker:
            self.children.append(Child("worker", "tenantry.runtime.worker_process", []))
        for i in range(self.plan.api_processes):
            self.children.append(
                Child(f"api-{i + 1}", "tenantry.runtime.api_process", ["--fd", str(fd)], (fd,))
            )
        for child in self.children:
            self._spawn(child)
        self._wait_ready()

    def _spawn(self, child: Child) -> None:
        read, write = os.pipe()
        child.process = spawn(
            child.module,
            [*child.args, "--ready-fd", str(write)],
            env=self.env,
            pass_fds=(*child.pass_fds, write),
        )
        os.close(write)
        child.ready_fd = read

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        pending = {c.ready_fd: c for c in self.children if c.ready_fd is not None}
        while pending:
            readable, _, _ = select.select(list(pending), [], [], 0.5)
            for fd in readable:
                child = pending.pop(fd)
                said = os.read(fd, 1)
                os.close(fd)
                child.ready_fd = None
                if not said:  # closed without a word: it died starting
                    raise RuntimeError(f"the {child.name} process exited while starting")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"not ready after {READY_TIMEOUT_SECONDS} s: {sorted(c.name for c in pending.values())}"
                )

    def _banner(self, first: FirstStart) -> None:
        settings = self.settings
        base = f"http://{settings.host}:{settings.port}"
        where = (
            f"embedded PostgreSQL under {settings.home}"
            if self.stack and self.stack.embedded
            else "external PostgreSQL"
        )
        apis = self.plan.api_processes
        lines = [
            f"Tenantry on {base} ({where}; Temporal at {settings.temporal_address})",
            f"  console   {base}/console",
            f"  API docs  {base}/docs",
            f"  health    {base}/health/ready",
            f"  metrics   {base}/metrics",
        ]
        ui = self.devserver.ui_url if self.devserver else None
        if ui:
            example = first.demo_tenants[0] if first.demo_tenants else "chogar"
            lines += [
                f"  Temporal  {ui}",
                f"    {example}'s workflows: {tenant_workflows_url(ui, example)}",
            ]
        lines += _bootstrap_lines(first.bootstrap)
        if first.bootstrap is not None and first.bootstrap.state not in ("closed", "expired"):
            lines.append(f"  Create the first operator with it at {base}/console/setup")
        if first.demo_tenants:
            lines.append(f"  demo tenants: {', '.join(first.demo_tenants)}")
        shared = " sharing limits through Redis" if apis > 1 else ""
        worker = " and a worker" if self.services and settings.run_worker else ""
        lines.append(
            f"Ready: {apis} API process{'es' if apis > 1 else ''} (uvloop, httptools){shared}"
            f"{worker}. Ctrl-C stops everything."
        )
        typer.echo("\n".join(lines))

    # Running ------------------------------------------------------------------------------

    def _on_signal(self, sig: int, _frame) -> None:
        if self.stop_mode is not None and sig == signal.SIGINT:
            self.stop_mode = "kill"
        elif self.stop_mode is None:
            self.stop_mode = "terminate" if sig == signal.SIGTERM else "interrupt"
        self.wake.set()

    def _supervise(self) -> int:
        while self.stop_mode is None:
            self.wake.wait(0.5)
            for child in self.children:
                if self.stop_mode is None and child.process.poll() is not None:
                    if child.restarts >= MAX_RESTARTS:
                        log.error("process keeps exiting; stopping", process=child.name)
                        self.stop_mode = "interrupt"
                        return 1
                    child.restarts += 1
                    # Its live gauges (in flight, pool use) no longer count.
                    mark_process_dead(child.process.pid, self.env[MULTIPROC_ENV])
                    log.warning(
                        "process exited; starting it again",
                        process=child.name,
                        returncode=child.process.returncode,
                    )
                    self._spawn(child)
                    os.close(child.ready_fd)
                    child.ready_fd = None
            for name, service in (("Temporal", self.devserver), ("Redis", self.redis)):
                if service is not None and service.process.poll() is not None:
                    log.error(f"{name} exited; stopping", returncode=service.process.returncode)
                    self.stop_mode = "interrupt"
                    return 1
        return 0

    # Stopping -----------------------------------------------------------------------------

    def _stop_all(self) -> None:
        mode = self.stop_mode or "interrupt"
        terminate = mode == "terminate"
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM if terminate else signal.SIGINT)
        # The API processes hold the listening socket too and keep serving while they drain; once
        # the last of them closes it, new connections are refused (a load balancer tries another
        # replica at once) instead of waiting in a backlog that nobody will ever accept from.
        if self.listener is not None:
            self.listener.close()
        settings = self.settings
        budget = (
            settings.drain_seconds + settings.shutdown_grace_seconds + 5
            if terminate
            else INTERRUPT_CHILDREN_SECONDS
        )
        started = time.monotonic()
        self._wait_or_kill(running, budget)
        if self.redis is not None:
            self.redis.stop(SERVICE_STOP_SECONDS)
            self.registry.forget("redis")
        if self.devserver is not None:
            self.devserver.stop(SERVICE_STOP_SECONDS)
            self.registry.forget("temporal")
        services = time.monotonic()
        if self.stack is not None:
            self.stack.stop()
        log.info(
            "stopped",
            processes_seconds=round(services - started, 2),
            database_seconds=round(time.monotonic() - services, 2),
        )

    def _wait_or_kill(self, processes: list[subprocess.Popen], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for process in processes:
            while process.poll() is None:
                if self.stop_mode == "kill" or time.monotonic() > deadline:
                    log.warning("process did not stop in time; killing it", pid=process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    break
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.1)


def _bootstrap_lines(token: Bootstrap | None) -> list[str]:
    """Where the bootstrap token is (never the token itself: consoles end up in logs)."""
    if token is None or token.state == "closed":
        return []
    if token.state == "expired":
        return [
            "",
            "  The operator bootstrap token expired; make a new one with",
            "    tenantry operators bootstrap-token --rotate",
        ]
    if token.path is None:
        return ["", "  Operator bootstrap token: the one TENANTRY_BOOTSTRAP_TOKEN sets"]
    until = token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if token.expires_at else "-"
    return [
        "",
        f"  Operator bootstrap token in {token.path} (readable by this user only;",
        f"    works until {until} or until the first operator exists)",
    ]


def _interrupt_startup(_sig, _frame) -> None:
    raise KeyboardInterrupt


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as error:
        listener.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _pool_sizes(admin_url: str, processes: int, settings: Settings) -> tuple[int, int]:
    """Each API process's pool, lowered when all of them would pass the server's
    `max_connections`."""
    pool, overflow = settings.db_pool_size, settings.db_max_overflow
    with psycopg.connect(libpq_dsn(admin_url)) as conn:
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])
    budget = limit - RESERVED_CONNECTIONS
    each = pool + overflow + 1  # and its configuration listener
    if processes * each <= budget:
        return pool, overflow
    per_process = max(2, budget // processes - 1)
    lowered = max(1, per_process * 2 // 3)
    log.warning(
        "database pools lowered to fit max_connections",
        processes=processes,
        max_connections=limit,
        pool_size=lowered,
        max_overflow=per_process - lowered,
    )
    return lowered, per_process - lowered


def _application_dsn(settings: Settings) -> str:
    if settings.app_database_url:
        return settings.app_database_url
    return app_url(settings, settings.database_url).render_as_string(hide_password=False)


def serve(settings: Settings, *, services: bool = True) -> int:
    try:
        return Supervisor(settings, services=services).run()
    except RuntimeError as error:
        typer.echo(f"tenantry run: {error}", err=True)
        return 1


def with_local_temporal(settings: Settings, *, address: str, ui_url: str | None) -> Settings:
    """The settings the children get once the local Temporal is up: its address, and its UI
    for the console's links unless one is named already (`TENANTRY_TEMPORAL_UI_URL`)."""
    started = {"temporal_address": address}
    if ui_url and not settings.temporal_ui_url:
        started["temporal_ui_url"] = ui_url
    return settings.model_copy(update=started)
