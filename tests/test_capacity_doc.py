"""docs/scaling.md's capacity table is what bench/capacity.py computes from bench/results/: a new
measurement, or a change to the model, shows up in the guide or fails here."""

from __future__ import annotations

from bench.capacity import DOC, Demand, measured_costs, render_into, size, table


def test_the_capacity_table_is_computed_from_the_measured_results():
    doc = DOC.read_text()
    assert render_into(doc, table(measured_costs(), Demand())) == doc


def test_the_model_grows_with_the_platform_and_keeps_two_api_replicas():
    costs = measured_costs()
    small = size(50, 500, costs, Demand())
    large = size(10_000, 100_000, costs, Demand())
    assert small["api_replicas"] >= 2
    assert large["peak_rps"] == 100_000 * 10 / 60
    for key in ("api_replicas", "workers", "postgres_cores", "connections"):
        assert large[key] > small[key], key
