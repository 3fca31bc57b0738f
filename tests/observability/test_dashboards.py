"""Every PromQL expression of the dashboards and rules parses, and every metric it reads is in a
real /metrics scrape of the app after traffic through each feature, or recorded by a rule."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tenantry.observability.tenant_labels import OTHER, TENANTS
from tests.incidents.conftest import report, until_waiting
from tests.observability.promql import (
    DASHBOARDS,
    dashboard_expressions,
    metric_names,
    recorded,
    rule_expressions,
)

PROMETHEUS_OWN = {"up"}  # written by Prometheus for each target it scrapes


def test_there_is_an_overview_and_a_tenant_drilldown():
    boards = {path.stem: json.loads(path.read_text()) for path in DASHBOARDS}
    assert set(boards) == {"platform-overview", "tenant-drilldown"}
    variables = {v["name"] for v in boards["tenant-drilldown"]["templating"]["list"]}
    assert "tenant" in variables
    drill = [t["expr"] for p in boards["tenant-drilldown"]["panels"] for t in p["targets"]]
    assert all('tenant="$tenant"' in expr for expr in drill)
    ids = [p["id"] for board in boards.values() for p in board["panels"]]
    assert all(len({p["id"] for p in b["panels"]}) == len(b["panels"]) for b in boards.values())
    assert ids


def test_every_expression_parses():
    expressions = dashboard_expressions() + rule_expressions()
    assert len(expressions) > 60
    for where, expression in expressions:
        assert metric_names(expression), where  # parses, and reads at least one metric


async def test_every_metric_read_is_in_a_real_scrape(
    app, client, desk, temporal_client, sdk_metrics
):
    tenant, headers = desk  # its knowledge went through ingestion and the outbox
    searched = await client.post("/v1/search", json={"query": "caldera rearme"}, headers=headers)
    assert searched.status_code == 200, searched.text
    incident = await report(client, headers, severity="critical")
    await until_waiting(temporal_client, tenant, incident["number"])  # triaged
    sdk_metrics.drain()  # the session's worker's Temporal SDK metrics, up to now
    app.state.metrics_state.read_at = float("-inf")  # read this test's tenant, not a cached state
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    exposed = {
        sample.name
        for family in text_string_to_metric_families(scrape.text)
        for sample in family.samples
    }
    read = {name for _, expression in dashboard_expressions() + rule_expressions()
            for name in metric_names(expression)}  # fmt: skip
    recorded_names = recorded()
    missing = sorted(name for name in read - recorded_names - PROMETHEUS_OWN if name not in exposed)
    assert not missing, f"read by a dashboard or rule, absent from /metrics: {missing}"
    # Temporal's own schedule-to-start, from the worker that ran this tenant's workflows.
    assert "temporal_workflow_task_schedule_to_start_latency_seconds_bucket" in read
    assert "temporal_workflow_task_schedule_to_start_latency_seconds_bucket" in exposed
    # The tenant's own series are there under its label: its slug when it is named, which it is
    # unless the session's earlier tenants already took the named places (then `__other__`).
    label = tenant.slug if tenant.slug in TENANTS.named() else OTHER
    assert f'tenantry_searches_total{{result="hits",source="api",tenant="{label}"}}' in scrape.text
    awaiting = f'tenantry_incidents{{state="awaiting_approval",tenant="{label}"}}'
    if label == tenant.slug:
        assert f"{awaiting} 1.0" in scrape.text
    else:
        assert awaiting in scrape.text
