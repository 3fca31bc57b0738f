"""The alert and recording rules in deploy/prometheus pass `promtool check rules`, and their unit
tests (series that fire, series that stay quiet, `for:` windows) pass `promtool test rules`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.servers import require_binary

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
SEED_ALERTS = {
    "PRSystemDown",
    "LLMUnhealthy",
    "HighResponseTime",
    "RAGEmpty",
    "TenantConcurrencyHigh",
    "APIResponseDegradation",
    "QueueDepthCritical",
    "TenantCountScaleUp",
    "DatabaseConnectionsScaleUp",
}
OUR_ALERTS = {"WorkersNotPolling"}
BURN_ALERTS = {
    f"SLO{sli}{speed}Burn" for sli in ("Availability", "Latency") for speed in ("Fast", "Slow")
}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    promtool = require_binary("promtool", "prometheus")
    return subprocess.run([promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yml"))


def alerts() -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_rules_are_valid():
    result = _promtool("check", "rules", *(p.name for p in rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass():
    tests = sorted(str(p.relative_to(RULES)) for p in (RULES / "tests").glob("*_test.yml"))
    assert tests
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_here_and_every_alert_is_unit_tested():
    defined = alerts()
    assert set(defined) == SEED_ALERTS | BURN_ALERTS | OUR_ALERTS
    tested = {
        case["alertname"]
        for path in (RULES / "tests").glob("*_test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # a case where it fires, not only one where it stays quiet
    }
    assert set(defined) == tested
    assert defined["APIResponseDegradation"]["for"] == "5m"
    assert "> 2" in defined["APIResponseDegradation"]["expr"]
    assert "> 50" in defined["TenantConcurrencyHigh"]["expr"]
    assert "> 1000" in defined["QueueDepthCritical"]["expr"]
    assert "> 100" in defined["TenantCountScaleUp"]["expr"]
    assert "> 0.8" in defined["DatabaseConnectionsScaleUp"]["expr"]
