"""Seed 000's scaling policy, replayed on synthetic load against the manifests' own numbers.

Phase 3 (KEDA's scaling modifiers): +50% only after 5 minutes over 80%, +200% at once past 95%,
-25% only after 15 minutes under 30%. Phase 2 (the plain HPA): the same windows, but steps in
proportion to the usage, which is why phase 3 needs the formula.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.tools import formula
from deploy.tools.hpa import SYNC_S, Autoscaler, Simulation, api_autoscaler, changes

OVERLAYS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "overlays"


@pytest.fixture(scope="module")
def keda() -> Autoscaler:
    return api_autoscaler(OVERLAYS / "phase3")


@pytest.fixture(scope="module")
def plain() -> Autoscaler:
    return api_autoscaler(OVERLAYS / "phase2")


def replay(autoscaler: Autoscaler, replicas: int, *segments: tuple[float, float]):
    """(usage%, minutes) segments; returns (seconds, from, to) for each change."""
    simulation = Simulation(autoscaler, replicas=replicas)
    simulation.replay(segments)
    return changes(simulation.steps, replicas)


def test_the_manifest_numbers_are_what_the_simulator_reads(keda, plain):
    assert keda.name == "ScaledObject/tenantry-api"
    assert (keda.min_replicas, keda.max_replicas) == (3, 30)
    assert keda.up.window_s == 0 and keda.down.window_s == 900
    assert plain.name == "HorizontalPodAutoscaler/tenantry-api"
    assert plain.up.window_s == 300 and plain.down.window_s == 900
    assert plain.up.tolerance == 0 and plain.down.tolerance == pytest.approx(0.625)


def test_steady_load_between_the_thresholds_never_scales(keda, plain):
    for autoscaler in (keda, plain):
        assert replay(autoscaler, 4, (60, 60), (79, 30), (31, 30)) == []


def test_up_fifty_percent_only_after_five_minutes_over_eighty(keda):
    # Four and a half minutes over 80% are not enough.
    assert replay(keda, 4, (60, 10), (85, 4.5), (60, 10)) == []
    ((when, before, after),) = replay(keda, 4, (60, 10), (85, 8))
    assert (before, after) == (4, 6)
    high_since = 10 * 60
    assert 5 * 60 - SYNC_S <= when - high_since <= 5 * 60
    # After the step the usage is 85 * 4/6 = 57%: no second step follows.


def test_past_ninety_five_percent_triples_at_once(keda):
    ((when, before, after),) = replay(keda, 4, (60, 10), (97, 3))
    assert (before, after) == (4, 12)
    assert when == 10 * 60  # the first sync that sees it
    ((_, before, after),) = replay(keda, 10, (60, 10), (99, 3))
    assert (before, after) == (10, 30)  # capped by maxReplicaCount


def test_down_a_quarter_only_after_fifteen_minutes_under_thirty(keda):
    assert replay(keda, 8, (50, 10), (20, 14), (50, 10)) == []
    steps = replay(keda, 8, (50, 10), (20, 40))
    (when, before, after), *later = steps
    assert (before, after) == (8, 6)
    assert 15 * 60 - SYNC_S <= when - 10 * 60 <= 15 * 60
    # Still under 30% (20% * 8/6 = 27%): the next quarter only 15 minutes later, never faster.
    (next_when, before, after), *_ = later
    assert (before, after) == (6, 5)  # 6 * 0.75 = 4.5, rounded up to a whole pod
    assert next_when - when >= 15 * 60 - SYNC_S


def test_never_below_the_minimum(keda):
    assert replay(keda, 3, (10, 60)) == []


def test_a_plain_hpa_cannot_make_the_emergency_step(plain, keda):
    # The plain HPA waits its 5 minutes even at 97%, then adds only in proportion to the usage.
    ((when, before, after),) = replay(plain, 4, (60, 10), (97, 8))
    assert when - 10 * 60 >= 5 * 60 - SYNC_S
    assert after - before < 0.5 * before
    # The same trace through KEDA's formula: +200% at the first sync.
    ((when, before, after),) = replay(keda, 4, (60, 10), (97, 8))
    assert (when, after) == (10 * 60, 12)


def test_the_plain_hpa_scales_down_only_under_thirty_percent(plain):
    assert replay(plain, 4, (40, 60)) == []
    ((when, before, after), *_) = replay(plain, 4, (40, 10), (20, 30))
    assert after < before and when - 10 * 60 >= 15 * 60 - SYNC_S


def test_formula_reader():
    names = {"usage": 97.0, "usage_min_5m": 50.0}
    text = "usage > 95 ? 300 : (usage_min_5m > 80 ? 150 : (usage < 30 ? 75 : 100))"
    assert formula.evaluate(text, names) == 300
    assert formula.evaluate(text, {**names, "usage": 85, "usage_min_5m": 81}) == 150
    assert formula.evaluate(text, {**names, "usage": 20}) == 75
    assert formula.evaluate("(a + b) * 2 - -1", {"a": 1, "b": 2}) == 7
    assert formula.evaluate("a >= 1 && !(b < 0) ? 1 : 0", {"a": 1, "b": 2}) == 1
    with pytest.raises(formula.FormulaError):
        formula.evaluate("usage ~ 3", names)
    with pytest.raises(formula.FormulaError):
        formula.evaluate("cpu > 1 ? 1 : 0", names)
