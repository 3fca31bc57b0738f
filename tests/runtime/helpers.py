"""`tenantry run` as a subprocess with a home of its own: start, read its console, stop, and see
which processes it has."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import psutil

from tenantry.runtime.pidfiles import PidRegistry
from tests.servers import free_port

READY = "Ctrl-C stops everything."
PASSWORD = "Correct-Horse-42-Battery"


def fresh_home() -> Path:
    # Not under pytest's tmp_path: another pytest starting makes that 0700, and the embedded
    # PostgreSQL runs as another user when the tests run as root.
    return Path(tempfile.mkdtemp(prefix="tenantry-run-")) / "home"


def remove_home(home: Path) -> None:
    shutil.rmtree(home.parent, ignore_errors=True)


class Run:
    """One `tenantry run`; its console is read by a thread into `lines`."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        *,
        command: str = "run",
        keep_settings: bool = False,
        **settings: str,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        env = {
            k: v for k, v in os.environ.items() if keep_settings or not k.startswith("TENANTRY_")
        }
        env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_PORT=str(self.port),
            TENANTRY_TEMPORAL_PORT=settings.pop("TENANTRY_TEMPORAL_PORT", str(free_port())),
            TENANTRY_TEMPORAL_UI_PORT=settings.pop("TENANTRY_TEMPORAL_UI_PORT", str(free_port())),
            TENANTRY_LOG_JSON="false",
            **settings,
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reading = True
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(READY)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, *, start: int = 0) -> str:
        """The first console line from `start` on that holds `needle` (read, never slept on)."""
        with self._seen:
            while True:
                for line in self.lines[start:]:
                    if needle in line:
                        return line
                if not self.reading:
                    raise AssertionError(f"exited before '{needle}':\n{self.text[-4000:]}")
                self._seen.wait()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self.reading = False
            self._seen.notify_all()

    def tree(self) -> list[psutil.Process]:
        """Every process of this run: its descendants and the embedded PostgreSQL (which its
        own start detaches), with PostgreSQL's own children."""
        found = psutil.Process(self.process.pid).children(recursive=True)
        postmaster = self.postmaster()
        if postmaster is not None:
            found += [postmaster, *postmaster.children(recursive=True)]
        return found

    def postmaster(self) -> psutil.Process | None:
        try:
            return psutil.Process(
                int((self.home / "pgdata" / "postmaster.pid").read_text().split()[0])
            )
        except (OSError, ValueError, psutil.Error):
            return None

    def send(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def cleanup(self) -> None:
        """After a failed test: stop this run as an operator would, and whatever it left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        PidRegistry(self.home).stop_orphans()
        postmaster = self.postmaster()
        if postmaster is not None:
            postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            gone([postmaster], timeout=30)

    def bootstrap_token(self) -> str:
        """The first start's token: in a file under the home, which the banner names."""
        assert f"Operator bootstrap token in {self.home / 'bootstrap_token'}" in self.text
        return (self.home / "bootstrap_token").read_text().strip()


def operator_headers(run: Run, token: str) -> dict[str, str]:
    base = f"{run.url}/v1/admin"
    account = {"email": "first@tenantry.dev", "name": "First", "password": PASSWORD}
    created = httpx.post(
        f"{base}/operators", json=account, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code in (201, 409), created.text
    login = httpx.post(f"{base}/auth/login", json={"email": account["email"], "password": PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def tenant_key(run: Run, operators: dict[str, str], slug: str = "chogar") -> dict[str, str]:
    """An admin API key of a demo tenant."""
    email = f"admin-{os.urandom(3).hex()}@{slug}.example"
    user = {"email": email, "password": PASSWORD, "role": "admin"}
    created = httpx.post(f"{run.url}/v1/admin/tenants/{slug}/users", json=user, headers=operators)
    assert created.status_code == 201, created.text
    login = httpx.post(
        f"{run.url}/v1/auth/login", json={"tenant": slug, "email": email, "password": PASSWORD}
    )
    access = {"Authorization": f"Bearer {login.json()['access_token']}"}
    key = httpx.post(
        f"{run.url}/v1/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=access
    )
    return {"X-API-Key": key.json()["key"]}


def gone(processes: list[psutil.Process], timeout: float = 15) -> list[psutil.Process]:
    """Those of `processes` still alive after `timeout` (a bound, not a measurement)."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return [p for p in alive if _still_running(p)]


def _still_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
