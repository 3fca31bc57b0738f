"""Every metric's labels are from a short, bounded list; `tenant` only on counters and gauges;
and at 1,000 tenants the series stay bounded while the sums over `tenant` stay true."""

from __future__ import annotations

import uuid

import pytest

from tenantry.observability import domain, tenant_labels
from tenantry.observability.metrics import REGISTRY, SEARCHES, STATE, TENANT_REQUESTS
from tenantry.observability.tenant_labels import OTHER, TenantLabels
from tenantry.tenancy.context import TenantRef

# Every label name any metric may carry; each has a bounded set of values (route templates,
# tiers, outcomes from fixed lists, tenant slugs through tenant_labels).
ALLOWED = {
    "route", "method", "status", "tier", "tenant", "code", "limit", "pool", "result", "source",
    "outcome", "how", "kind", "action", "state", "sli", "version", "dependency", "task_queue",
    "type", "namespace", "worker_type", "poller_type",
}  # fmt: skip


def _families():
    """(name, type, declared label names) of every metric the registry holds."""
    return [
        (collector._name, collector._type, set(collector._labelnames))
        for collector in REGISTRY._collector_to_names
    ]


def test_every_metric_has_bounded_label_names_and_histograms_have_no_tenant():
    families = _families()
    assert len(families) > 20
    for name, kind, labels in families:
        assert labels <= ALLOWED, (name, labels - ALLOWED)
        if kind == "histogram":
            assert "tenant" not in labels, name
            # Temporal's SDK histograms are per task queue (observability.temporal_sdk).
            per_queue = name.startswith("temporal_") and labels == {"namespace", "task_queue"}
            assert "tier" in labels or name == "tenantry_outbox_delay_seconds" or per_queue, name
    for family in STATE:
        assert set(family.labels) <= ALLOWED, family.name


def _tenant_series(metric_name: str) -> set[str]:
    return {
        sample.labels["tenant"]
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == metric_name and "tenant" in sample.labels
    }


def _total(counter, **labels) -> float:
    name = f"{counter._name}_total"
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_a_thousand_tenants_stay_bounded_and_sums_stay_true(monkeypatch):
    labels = TenantLabels(top=20, cap=60)
    monkeypatch.setattr(tenant_labels, "TENANTS", labels)
    tenants = [
        TenantRef(uuid.uuid4(), f"load-{i:04d}", "enterprise" if i % 100 == 0 else "standard")
        for i in range(1000)
    ]
    before_series = _tenant_series("tenantry_searches_total")
    before = _total(SEARCHES, source="external")
    calls = 0
    for round_ in range(3):
        for i, tenant in enumerate(tenants):
            # Tenants 900.. send the most; each round they send more.
            for _ in range(1 + (round_ * 5 if i >= 900 else 0)):
                domain.searched(tenant, source="external", seconds=0.01, hits=1)
                calls += 1
    series = _tenant_series("tenantry_searches_total") - before_series
    named = labels.named()
    assert len(named) <= labels.cap
    assert series <= named | {OTHER}
    assert OTHER in _tenant_series("tenantry_searches_total")
    # The sum over tenant is every search, whoever was named.
    assert _total(SEARCHES, source="external") - before == pytest.approx(calls)
    # Enterprise tenants are named (within the cap), and so are the busiest.
    assert {t.slug for t in tenants if t.tier == "enterprise"} <= named
    assert any(t.slug in named for t in tenants[900:])


def test_a_named_tenant_stays_named_and_the_cap_holds():
    labels = TenantLabels(top=2, cap=3)
    assert labels.label("a", "free") == "a" and labels.label("b", "free") == "b"
    assert labels.label("c", "free") == OTHER  # the top two are taken by first sight
    for _ in range(tenant_labels.RANK_EVERY):
        labels.label("c", "free")
    assert labels.label("c", "free") == "c"  # ranked in among the busiest
    assert labels.label("a", "free") == "a"  # and the earlier ones stay: counters stay monotonic
    assert labels.label("big", "enterprise") == OTHER  # past the cap, even enterprise folds
    assert labels.label(None, None) == OTHER


def test_reading_does_not_make_a_tenant_named():
    labels = TenantLabels(top=5, cap=10)
    assert labels.label("quiet", "free", traffic=False) == OTHER
    assert labels.label("corp", "enterprise", traffic=False) == "corp"


def test_tenant_requests_carry_status_classes_not_statuses():
    values = {
        s.labels["code"]
        for m in REGISTRY.collect()
        for s in m.samples
        if s.name == f"{TENANT_REQUESTS._name}_total"
    }
    assert values <= {"2xx", "3xx", "4xx", "429", "5xx"}
