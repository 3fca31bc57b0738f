"""Health endpoints, Prometheus metrics by route template and tier, and request-id'd JSON logs."""

from __future__ import annotations

import io
import json
import logging
import sys

import structlog

from tenantry.observability.logging import configure_logging


async def test_health_endpoints(client):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    database = ready.json()["checks"][0]
    assert database["status"] == "ok" and database["migration"] == database["head"]
    detailed = (await client.get("/health/detailed")).json()
    assert detailed["components"][0]["name"] == "database"
    assert detailed["components"][0]["latency_ms"] >= 0


async def test_ready_is_503_when_migrations_are_behind(client, admin_sql):
    admin_sql.execute("UPDATE alembic_version SET version_num = 'behind'")
    try:
        response = await client.get("/health/ready")
    finally:
        admin_sql.execute(
            "UPDATE alembic_version SET version_num = %s",
            [__import__("tenantry.db.migrate", fromlist=["x"]).head_revision()],
        )
    assert response.status_code == 503
    assert response.json()["checks"][0]["status"] == "degraded"


async def test_metrics_use_route_templates_and_tiers(client, operator_headers, make_tenant):
    tenant = await make_tenant()
    await client.get(f"/v1/admin/tenants/{tenant.slug}", headers=operator_headers)
    text = (await client.get("/metrics")).text
    assert (
        'tenantry_http_requests_total{method="GET",route="/v1/admin/tenants/{slug}",'
        'status="200",tier="operator"}' in text
    )
    assert "tenantry_http_request_duration_seconds_bucket" in text
    assert tenant.slug not in text
    assert operator_headers["Authorization"].split()[1] not in text


async def test_request_id_is_echoed_and_logged_without_secrets(client, operator_headers, capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(level="INFO", json=True)
    try:
        response = await client.get(
            "/v1/admin/tenants", headers={**operator_headers, "X-Request-ID": "trace-12345678"}
        )
        assert response.headers["x-request-id"] == "trace-12345678"
        generated = await client.get("/health/live")
        assert len(generated.headers["x-request-id"]) == 32
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if line.startswith("{")
        ]
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level
    entry = next(line for line in lines if line.get("request_id") == "trace-12345678")
    assert entry["route"] == "/v1/admin/tenants" and entry["status"] == 200
    assert entry["subject"].startswith("operator:ops-")
    assert operator_headers["Authorization"].split()[1] not in json.dumps(lines)


def test_library_logs_follow_a_swapped_stderr(monkeypatch):
    """A library's record goes to the stderr of the moment, not to the one logging was set up
    with (a CLI runner's, closed since)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(level="INFO", json=True)
    try:
        first.close()
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("temporalio.activity").warning("after the swap")
        record = json.loads(second.getvalue())
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level
    assert record["event"] == "after the swap" and record["level"] == "warning"


async def test_unknown_route_is_a_problem(client):
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-found")
