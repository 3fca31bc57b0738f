"""Who runs under a home: one JSON file per process in `home/run/`, and what a crash left behind.

A record names a pid and its start time, so a pid reused by an unrelated process is never taken
for ours. After a `kill -9` of `tenantry run`, the next start finds the services it left running
and stops them (Temporal, Redis), or adopts them (PostgreSQL: see `db/embedded.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil

SUPERVISOR = "supervisor"


class HomeInUse(RuntimeError):
    pass


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    started: float
    description: str

    def process(self) -> psutil.Process | None:
        """The recorded process if it is still the one that was recorded, else None."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > 1 or not process.is_running():
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.Error:
            return None


class PidRegistry:
    def __init__(self, home: Path) -> None:
        self.folder = home / "run"
        self.folder.mkdir(parents=True, exist_ok=True)

    def record(self, name: str, pid: int, description: str) -> Record:
        started = psutil.Process(pid).create_time()
        entry = Record(name, pid, started, description)
        tmp = self.folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(entry.__dict__))
        os.replace(tmp, self.folder / f"{name}.json")
        return entry

    def forget(self, name: str) -> None:
        (self.folder / f"{name}.json").unlink(missing_ok=True)

    def records(self) -> list[Record]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                found.append(Record(**json.loads(path.read_text())))
        return found

    def claim(self) -> None:
        """Refuse a second `tenantry run` on the same home; record this one."""
        for entry in self.records():
            if entry.name == SUPERVISOR and entry.pid != os.getpid() and entry.process():
                raise HomeInUse(
                    f"Another `tenantry run` (pid {entry.pid}) serves {self.folder.parent}; "
                    "stop it first."
                )
        self.record(SUPERVISOR, os.getpid(), "tenantry run")

    def stop_orphans(self, *, timeout: float = 5) -> list[str]:
        """Stop what an earlier run left running; one console line for each."""
        lines = []
        for entry in self.records():
            if entry.name == SUPERVISOR:
                continue
            process = entry.process()
            if process is not None:
                stop_process(process, timeout=timeout)
                lines.append(
                    f"Stopped {entry.description} (pid {entry.pid}), left running by an earlier "
                    "`tenantry run` that did not stop cleanly."
                )
            self.forget(entry.name)
        return lines


def stop_process(process: psutil.Process, *, timeout: float) -> None:
    """SIGTERM, then SIGKILL once `timeout` has passed."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(5)
