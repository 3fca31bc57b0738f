"""Stopping background tasks within a bound: a task stuck in a driver's close (a LISTEN
connection, a worker whose activity will not end) must not hold up a process's shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable

import structlog

log = structlog.get_logger("tenantry.runtime")

STOP_SECONDS = 5.0  # for a cancelled background task to finish


async def cancel_within(tasks: Iterable[asyncio.Task], seconds: float = STOP_SECONDS) -> bool:
    """Cancel the tasks and wait for them at most `seconds`; False (and a warning naming them)
    when some did not stop, which are then left behind."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if not tasks:
        return True
    done, stuck = await asyncio.wait(tasks, timeout=seconds)
    for task in done:  # one that had failed before it was cancelled says why, once
        if not task.cancelled() and task.exception() is not None:
            log.error("background task had failed", task=task.get_name(), exc_info=task.exception())
    if stuck:
        log.warning("background tasks did not stop", tasks=sorted(t.get_name() for t in stuck))
    return not stuck


async def finish_within(step: Awaitable, what: str, seconds: float = STOP_SECONDS) -> bool:
    """Await one step of a shutdown at most `seconds` (cancelled then); False, with a warning,
    when it failed or ran out of time, so that the steps after it still run."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown step did not finish in time", step=what, seconds=seconds)
        return False
    except Exception:
        log.exception("shutdown step failed", step=what)
        return False
    return True


def being_cancelled() -> bool:
    """Whether the current task has been asked to stop: a loop that survives its errors checks
    this before going round again, so that an error raised on the way out (a cleanup failing
    after the cancellation) cannot keep it running."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
