"""Replay a load trace against the API's autoscaler as the manifests define it.

    python -m deploy.tools.hpa deploy/kubernetes/overlays/phase3 --replicas 4 \\
        --trace 60:10m,85:6m,60:10m,97:2m,20:40m

Each trace segment is `usage%:duration`, the usage measured on the replicas the segment begins
with; within a segment the demand (in pods' worth of requested CPU) stays, so the usage falls as
replicas are added. The
numbers (targets, windows, policies, the KEDA formula and its queries) are read from the rendered
overlay, never repeated here.

The algorithm is the HPA controller's (pkg/controller/podautoscaler): a recommendation
ceil(replicas * metric / target) unless the ratio is within the tolerance; stabilization keeps
the lowest recommendation of the scale-up window and the highest of the scale-down window; rate
policies cap the change against the replicas at the start of each policy's period, choosing by
selectPolicy; min/max bound it. One sync every 15 s. Pods are taken as ready at once, and
Prometheus samples the usage at each sync.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.tools import formula as expr
from deploy.tools.kustomize import build

SYNC_S = 15
DEFAULT_TOLERANCE = 0.1
WINDOWED = re.compile(r"^(min|max)_over_time\(\((?P<inner>.*)\)\[(\d+)m:(\d+)s\]\)$", re.S)


@dataclass(frozen=True)
class Policy:
    kind: str  # "Percent" or "Pods"
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    window_s: int
    select: str
    policies: tuple[Policy, ...]
    tolerance: float


@dataclass(frozen=True)
class Series:
    """What a trigger reads: usage now, or its min/max over a window."""

    function: str  # "now", "min" or "max"
    window_s: int = 0

    def read(self, history: Sequence[float]) -> float:
        if self.function == "now":
            return history[-1]
        samples = history[-(self.window_s // SYNC_S + 1) :]
        return min(samples) if self.function == "min" else max(samples)


@dataclass(frozen=True)
class Autoscaler:
    name: str
    min_replicas: int
    max_replicas: int
    up: Rules
    down: Rules
    ratio: Callable[[Sequence[float]], float]  # usage history -> metric / target


@dataclass
class Step:
    t_s: int
    usage: float
    replicas: int


def _rules(spec: dict[str, Any] | None, direction: str) -> Rules:
    spec = spec or {}
    if direction == "up":
        window, policies = 0, [Policy("Percent", 100, 15), Policy("Pods", 4, 15)]
    else:
        window, policies = 300, [Policy("Percent", 100, 15)]
    if "policies" in spec:
        policies = [Policy(p["type"], p["value"], p["periodSeconds"]) for p in spec["policies"]]
    return Rules(
        window_s=spec.get("stabilizationWindowSeconds", window),
        select=spec.get("selectPolicy", "Max"),
        policies=tuple(policies),
        tolerance=_quantity(spec.get("tolerance", DEFAULT_TOLERANCE)),
    )


def _quantity(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def from_hpa(hpa: dict[str, Any]) -> Autoscaler:
    spec = hpa["spec"]
    (metric,) = spec["metrics"]
    target = metric["resource"]["target"]
    if metric["type"] != "Resource" or target["type"] != "Utilization":
        raise ValueError("only a CPU utilization HPA is simulated")
    utilization = target["averageUtilization"]
    behavior = spec.get("behavior", {})
    return Autoscaler(
        name=f"HorizontalPodAutoscaler/{hpa['metadata']['name']}",
        min_replicas=spec.get("minReplicas", 1),
        max_replicas=spec["maxReplicas"],
        up=_rules(behavior.get("scaleUp"), "up"),
        down=_rules(behavior.get("scaleDown"), "down"),
        ratio=lambda history: history[-1] / utilization,
    )


def _normalize(query: str) -> str:
    return re.sub(r"\s+", "", query)


def _series(triggers: list[dict[str, Any]]) -> dict[str, Series]:
    """Every trigger must read the same usage query, bare or through min/max_over_time."""
    plain = {
        t["name"]: t["metadata"]["query"]
        for t in triggers
        if not WINDOWED.match(t["metadata"]["query"].strip())
    }
    if len({_normalize(q) for q in plain.values()}) != 1:
        raise ValueError("the triggers must share one usage query to be simulated")
    usage = _normalize(next(iter(plain.values())))
    series = {}
    for trigger in triggers:
        query = trigger["metadata"]["query"].strip()
        match = WINDOWED.match(query)
        if match is None:
            series[trigger["name"]] = Series("now")
            continue
        if _normalize(match.group("inner")) != usage:
            raise ValueError(f"trigger {trigger['name']} windows another query than the usage")
        if int(match.group(4)) != SYNC_S:
            raise ValueError(f"trigger {trigger['name']} samples every {match.group(4)}s, not 15s")
        series[trigger["name"]] = Series(match.group(1), int(match.group(3)) * 60)
    return series


def from_scaled_object(scaled: dict[str, Any]) -> Autoscaler:
    spec = scaled["spec"]
    advanced = spec.get("advanced", {})
    modifiers = advanced["scalingModifiers"]
    if modifiers.get("metricType") != "Value":
        raise ValueError("only a formula with a Value target is simulated")
    target = float(modifiers["target"])
    series = _series([t for t in spec["triggers"] if t["type"] == "prometheus"])
    missing = expr.names_in(modifiers["formula"]) - series.keys()
    if missing:
        raise ValueError(f"the formula names unknown triggers: {sorted(missing)}")

    def ratio(history: Sequence[float]) -> float:
        values = {name: s.read(history) for name, s in series.items()}
        return expr.evaluate(modifiers["formula"], values) / target

    behavior = advanced.get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
    return Autoscaler(
        name=f"ScaledObject/{scaled['metadata']['name']}",
        min_replicas=spec.get("minReplicaCount", 0),
        max_replicas=spec.get("maxReplicaCount", 100),
        up=_rules(behavior.get("scaleUp"), "up"),
        down=_rules(behavior.get("scaleDown"), "down"),
        ratio=ratio,
    )


def api_autoscaler(overlay: Path, name: str = "tenantry-api") -> Autoscaler:
    """The autoscaler of the API in a rendered overlay: KEDA's when there is one, else the HPA."""
    resources = {(r["kind"], r["metadata"]["name"]): r for r in build(overlay)}
    if ("ScaledObject", name) in resources:
        return from_scaled_object(resources["ScaledObject", name])
    if ("HorizontalPodAutoscaler", name) in resources:
        return from_hpa(resources["HorizontalPodAutoscaler", name])
    raise LookupError(f"{overlay}: no autoscaler for {name}")


@dataclass
class _Events:
    up: list[tuple[int, int]] = field(default_factory=list)  # (time, replicas added)
    down: list[tuple[int, int]] = field(default_factory=list)

    def within(self, events: list[tuple[int, int]], now: int, period_s: int) -> int:
        return sum(change for t, change in events if t > now - period_s)


def _limit(rules: Rules, current: int, events: _Events, now: int, up: bool) -> int:
    """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for policy in rules.policies:
        start = (
            current
            - events.within(events.up, now, policy.period_s)
            + events.within(events.down, now, policy.period_s)
        )
        if policy.kind == "Pods":
            proposals.append(start + policy.value if up else start - policy.value)
        elif up:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    widest = max if up else min
    narrowest = min if up else max
    return (narrowest if rules.select == "Min" else widest)(proposals)


class Simulation:
    """One autoscaler and the replicas it controls, advanced one sync at a time."""

    def __init__(self, autoscaler: Autoscaler, *, replicas: int) -> None:
        self.autoscaler = autoscaler
        self.replicas = replicas
        self.now = -SYNC_S
        self.history: list[float] = []
        self.recommendations: list[tuple[int, int]] = []
        self.events = _Events()
        self.steps: list[Step] = []

    def run(self, demand: Sequence[float]) -> list[Step]:
        """`demand[i]` is the CPU wanted at the next sync, in pods' worth of requested CPU."""
        for wanted in demand:
            self._sync(wanted)
        return self.steps

    def replay(self, segments: Sequence[tuple[float, float]]) -> list[Step]:
        """(usage%, minutes) segments, each usage measured on the replicas it begins with."""
        for percent, minutes in segments:
            demand = percent / 100 * self.replicas
            self.run([demand] * round(minutes * 60 / SYNC_S))
        return self.steps

    def _sync(self, wanted: float) -> None:
        scaler, replicas = self.autoscaler, self.replicas
        self.now += SYNC_S
        now = self.now
        usage = 100 * wanted / replicas
        self.history.append(usage)
        ratio = scaler.ratio(self.history)
        desired = replicas
        if ratio > 1 + scaler.up.tolerance or ratio < 1 - scaler.down.tolerance:
            desired = math.ceil(replicas * ratio)
        # stabilizeRecommendationWithBehaviors: the lowest recommendation of the up window, the
        # highest of the down window.
        recent = self.recommendations
        up_floor = min([desired] + [r for t, r in recent if t > now - scaler.up.window_s])
        down_ceiling = max([desired] + [r for t, r in recent if t > now - scaler.down.window_s])
        recent.append((now, desired))
        stabilized = min(max(replicas, up_floor), down_ceiling)
        # convertDesiredReplicasWithBehaviorRate
        if stabilized > replicas:
            ceiling = max(_limit(scaler.up, replicas, self.events, now, up=True), replicas)
            target = min(stabilized, ceiling, scaler.max_replicas)
        elif stabilized < replicas:
            floor = min(_limit(scaler.down, replicas, self.events, now, up=False), replicas)
            target = max(stabilized, floor, scaler.min_replicas)
        else:
            target = replicas
        if target > replicas:
            self.events.up.append((now, target - replicas))
        elif target < replicas:
            self.events.down.append((now, replicas - target))
        self.replicas = target
        self.steps.append(Step(now, usage, target))


def changes(steps: Sequence[Step], start: int) -> list[tuple[int, int, int]]:
    """(time, from, to) of every change of the replica count."""
    out, previous = [], start
    for step in steps:
        if step.replicas != previous:
            out.append((step.t_s, previous, step.replicas))
            previous = step.replicas
    return out


def _segments(text: str) -> list[tuple[float, float]]:
    out = []
    for part in text.split(","):
        percent, duration = part.split(":")
        minutes = float(duration[:-1]) if duration.endswith("m") else float(duration) / 60
        out.append((float(percent), minutes))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", type=Path)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--trace", required=True, help="usage%%:duration,... e.g. 85:6m,20:20m")
    args = parser.parse_args(argv)
    autoscaler = api_autoscaler(args.overlay)
    steps = Simulation(autoscaler, replicas=args.replicas).replay(_segments(args.trace))
    print(f"{autoscaler.name}: {args.replicas} replicas at t=0")
    for t, before, after in changes(steps, args.replicas):
        usage = next(s.usage for s in steps if s.t_s == t)
        change = (after - before) / before
        print(
            f"  t={t // 60:>3}m{t % 60:02d}s  usage {usage:5.1f}%  {before} -> {after} ({change:+.0%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
