"""Shutdown steps are bounded: one that never finishes, or fails, does not stop the ones after it."""

from __future__ import annotations

import asyncio

from tenantry.runtime.stopping import finish_within


async def test_a_stuck_or_failing_shutdown_step_is_given_up_and_the_next_ones_run():
    never = asyncio.Event()
    ran: list[str] = []

    async def stuck() -> None:
        try:
            await never.wait()
        finally:
            ran.append("stuck cancelled")

    async def failing() -> None:
        raise ConnectionError("redis went away")

    async def last() -> None:
        ran.append("last")

    assert await finish_within(stuck(), "stuck", seconds=0.05) is False
    assert await finish_within(failing(), "failing") is False
    assert await finish_within(last(), "last") is True
    assert ran == ["stuck cancelled", "last"]
