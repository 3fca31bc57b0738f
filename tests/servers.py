"""Debian servers the tests need (slapd, redis-server): installed when missing and possible.

Where they cannot be installed the test is skipped with the reason; with CI=true it fails instead,
because CI must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])


def _give_up(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)")
    pytest.skip(reason)


def require_binary(binary: str, *packages: str) -> str:
    found = shutil.which(binary, path=SEARCH_PATH)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        found = shutil.which(binary, path=SEARCH_PATH)
        if found:
            return found
    _give_up(
        f"{binary} (Debian package {', '.join(packages)}) is missing and could not be installed"
    )
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(proc: subprocess.Popen, needle: str, stream_name: str = "stderr") -> list[str]:
    """Read the server's own output until it says it is ready (no polling, no sleeping)."""
    stream = getattr(proc, stream_name)
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"server exited before '{needle}':\n" + "".join(seen[-40:]))


def start_redis(workdir) -> tuple[subprocess.Popen, str]:
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_line(proc, "Ready to accept connections", "stdout")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_api(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`tenantry run` against the test database, as a separate process on its own port."""
    import sys

    port = free_port()
    # One API process and no worker of its own, unless the caller asks (the session has a worker).
    defaults = {"TENANTRY_API_PROCESSES": "1", "TENANTRY_RUN_WORKER": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantry.cli", "run"],
        env={**defaults, **env, "TENANTRY_PORT": str(port), "TENANTRY_LOG_JSON": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_line(proc, "Ctrl-C stops everything.", "stdout")
    # Keep reading its log, so the process never blocks on a full pipe.
    import threading

    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, f"http://127.0.0.1:{port}"
