"""What every child of `tenantry run` does first, and how the supervisor starts one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Linux: the kernel sends `sig` to this process when its parent dies (`kill -9` of the
    supervisor), so API processes and the worker never outlive `tenantry run`."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() == 1:  # the parent died before the request above was made
        os.kill(os.getpid(), sig)


def tell_ready(fd: int | None) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, b"1")
        os.close(fd)


def spawn(
    module: str, args: list[str], *, env: dict[str, str], pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    """A Python child in its own process group: a Ctrl-C in the terminal reaches the supervisor
    only, which stops the children in order."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        pass_fds=pass_fds,
        process_group=0,
    )
