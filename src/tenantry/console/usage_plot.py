"""Usage over time as a server-rendered SVG line chart: no JavaScript, readable as a table too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WIDTH, HEIGHT, PAD = 640, 200, 36
COLOURS = ("#0b5cad", "#a40e26", "#116329", "#8250df", "#bc4c00", "#57606a")


@dataclass(frozen=True)
class Series:
    metric: str
    colour: str
    points: str  # the polyline's "x,y x,y …"
    total: int


@dataclass(frozen=True)
class Plot:
    width: int
    height: int
    pad: int
    start: date
    end: date
    peak: int
    series: list[Series]


def plot(days, *, start: date, end: date) -> Plot:
    """One line per metric over every day from `start` to `end` (a missing day counts 0)."""
    span = max(1, (end - start).days)
    by_day = {d.day: d.metrics for d in days}
    metrics = sorted({m for d in days for m in d.metrics})
    peak = max([v for d in days for v in d.metrics.values()] or [0]) or 1
    dates = [start + timedelta(days=i) for i in range(span + 1)]
    series = []
    for index, metric in enumerate(metrics):
        points = []
        for day in dates:
            value = by_day.get(day, {}).get(metric, 0)
            x = PAD + (day - start).days * (WIDTH - 2 * PAD) / span
            y = HEIGHT - PAD - value * (HEIGHT - 2 * PAD) / peak
            points.append(f"{x:.1f},{y:.1f}")
        total = sum(by_day.get(day, {}).get(metric, 0) for day in dates)
        series.append(Series(metric, COLOURS[index % len(COLOURS)], " ".join(points), total))
    return Plot(WIDTH, HEIGHT, PAD, start, end, peak, series)
