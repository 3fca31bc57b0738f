"""`tenantry run`'s worker process serves the dedicated queue of a tenant whose configuration
asks for it, starting and stopping that queue's worker as the configuration changes, and stops
within its bound with it running; `TENANTRY_DEDICATED_WORKERS=external` leaves it alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.runtime.helpers import Run, fresh_home, remove_home

pytestmark = pytest.mark.slow
STARTED = "dedicated worker started"
STOPPED = "dedicated worker stopped"


def config_set(run: Run, assignment: str) -> None:
    """`tenantry config set` as an operator runs it beside the run (same home, its database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update(TENANTRY_HOME=str(run.home), TENANTRY_LOG_JSON="false")
    done = subprocess.run(
        [sys.executable, "-m", "tenantry.cli", "config", "set", "chogar", assignment],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["embedded", "external"])
def test_the_worker_process_serves_a_dedicated_queue_while_the_config_asks_for_it(mode):
    home = fresh_home()
    run = None
    try:
        run = Run(
            home,
            TENANTRY_DEDICATED_WORKERS=mode,
            TENANTRY_DEDICATED_SWEEP_SECONDS="0.2",
        )
        running = run.wait_for("worker running")
        assert ("not served here" in running) == (mode == "external")
        config_set(run, "features.dedicated_workers=true")
        if mode == "embedded":
            line = run.wait_for(STARTED)
            assert "tenant-chogar-jobs" in line
            mark = len(run.lines)
            config_set(run, "features.dedicated_workers=false")
            assert "tenant-chogar-jobs" in run.wait_for(STOPPED, start=mark)
            config_set(run, "features.dedicated_workers=true")
            run.wait_for(STARTED, start=mark)
        # The run stops within its bound, the dedicated worker with it.
        assert run.stop(signal.SIGINT) == 0
        if mode == "external":
            assert STARTED not in run.text
    finally:
        if run is not None:
            run.cleanup()
        remove_home(home)
