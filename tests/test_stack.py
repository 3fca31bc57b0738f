"""`tenantry run` (what `make run` starts): embedded PostgreSQL, first-start token (in a file the
banner names) and demo tenants, a clean stop on Ctrl-C, and the same data on the next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.runtime.helpers import fresh_home, remove_home

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(home: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(
        TENANTRY_HOME=str(home),
        TENANTRY_PORT=str(port),
        TENANTRY_TEMPORAL_PORT=str(free_port()),
        TENANTRY_TEMPORAL_UI_PORT=str(free_port()),
        TENANTRY_LOG_JSON="false",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantry.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    for line in proc.stdout:  # the server says when it is ready; no polling
        seen.append(line)
        if "Ctrl-C stops everything." in line:
            return proc, seen
    raise AssertionError("tenantry run exited early:\n" + "".join(seen))


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return rest


def operator_login(port: int, bootstrap_token: str) -> dict[str, str]:
    """What a new deployment does first: the bootstrap token creates an operator, who logs in."""
    base = f"http://127.0.0.1:{port}/v1/admin"
    account = {
        "email": "first@tenantry.dev",
        "name": "First",
        "password": "Correct-Horse-42-Battery",
    }
    created = httpx.post(
        f"{base}/operators", json=account, headers={"Authorization": f"Bearer {bootstrap_token}"}
    )
    assert created.status_code == 201, created.text
    del account["name"]
    token = httpx.post(f"{base}/auth/login", json=account).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_run_first_start_ctrl_c_and_restart():
    # Not under tmp_path: another pytest starting makes that 0700, and the embedded PostgreSQL
    # runs as another user when the tests run as root.
    home, port = fresh_home(), free_port()
    proc, output = start(home, port)
    try:
        text = "".join(output)
        token_file = home / "bootstrap_token"
        assert f"Operator bootstrap token in {token_file}" in text and "tnop_" not in text
        token = token_file.read_text().strip()
        assert f"http://127.0.0.1:{port}/docs" in text and "/metrics" in text
        headers = operator_login(port, token)
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/admin/tenants", headers=headers).json()
        assert {t["slug"] for t in listed["items"]} == {"chogar", "amovil", "afijo"}
    finally:
        rest = stop(proc)
    assert proc.returncode == 0, rest
    assert "Tenantry stopped." in rest
    assert not (home / "pgdata" / "postmaster.pid").exists()

    proc, output = start(home, port)
    try:
        again = "".join(output)
        assert "tnop_" not in again and "bootstrap token" not in again  # spent: an operator exists
        assert not (home / "bootstrap_token").exists()
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/admin/tenants", headers=headers).json()
        assert sorted(t["slug"] for t in listed["items"]) == ["afijo", "amovil", "chogar"]
    finally:
        stop(proc)
    assert proc.returncode == 0
    remove_home(home)
