"""Load shedding: when this process is saturated, refuse the lowest tier first.

Pressure is the larger of in-flight requests over capacity and event-loop lag over its threshold;
each tier is refused once pressure passes its `shed_above` (free first, enterprise last).
"""

from __future__ import annotations

import asyncio

from tenantry.observability.metrics import EVENT_LOOP_LAG, IN_FLIGHT


class LoadMonitor:
    def __init__(self, *, capacity: int, lag_threshold_seconds: float) -> None:
        self.capacity = capacity
        self.lag_threshold = lag_threshold_seconds
        self.in_flight = 0
        self.lag = 0.0

    def pressure(self) -> float:
        return max(self.in_flight / self.capacity, self.lag / self.lag_threshold)

    def should_shed(self, shed_above: float) -> bool:
        return self.pressure() >= shed_above

    def started(self) -> None:
        self.in_flight += 1
        IN_FLIGHT.set(self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1
        IN_FLIGHT.set(self.in_flight)

    async def watch_loop_lag(self, interval: float = 0.1) -> None:
        """A timer that fires late is a loop too busy to serve requests on time."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            self.observe(max(0.0, loop.time() - started - interval))

    def observe(self, late: float) -> None:
        """One timer's lateness. Smoothed, so one slow callback does not shed; a loop that stays
        late does. Each reading counts for at most twice the threshold: a process that was
        stopped (SIGSTOP, a paused VM) or stalled once reads seconds late on its next tick, and
        must not then shed every request that waited for it; lag that persists still sheds."""
        late = min(late, 2 * self.lag_threshold)
        self.lag = 0.7 * self.lag + 0.3 * late
        EVENT_LOOP_LAG.set(self.lag)
