"""The CLI says nothing of its own on start: every command's output is its answer."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_cli_starts_without_warnings_when_xdg_runtime_dir_is_unset():
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    started = subprocess.run(
        [sys.executable, "-W", "error::Warning", "-c", "import tenantry.cli.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stderr == ""
