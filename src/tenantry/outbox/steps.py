"""Workflow-side helpers (sandbox-safe): give the slot back, and wait out a suspension."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

# A paused workflow also looks again this often, in case its resume signal was never written.
RECHECK = timedelta(minutes=10)
T = TypeVar("T")
RELEASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)


async def releasing_slot(tenant_id: str, work: Awaitable[T]) -> T:
    """The workflow's work, then its slot given back however the work ended (a result, an
    error, a cancel), but not when the worker evicts the workflow from its cache: it is not
    ending then, and its coroutine is torn down where no command may be sent (a `finally` would
    try to)."""
    try:
        result = await work
    except (Exception, asyncio.CancelledError):
        await release_slot(tenant_id)
        raise
    await release_slot(tenant_id)
    return result


async def release_slot(tenant_id: str) -> None:
    await workflow.execute_activity(
        "workflows.release",
        tenant_id,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=RELEASE_RETRY,
    )


class Resumable:
    """A workflow whose steps may find its tenant suspended: it then waits for `resume`.

    Resumes are counted, so one that arrives between the step and the wait is not missed:
    note `self.resumes` before the step, and wait for it to grow.
    """

    resumes: int = 0

    @workflow.signal
    def resume(self) -> None:
        self.resumes += 1

    async def wait_for_resume(self, seen: int) -> None:
        # On time-out the step looks again: it tells whether the tenant is still suspended.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self.resumes > seen, timeout=RECHECK)
