"""docs/observability.md lists every metric of the registry and read at scrape time (and no
other), every alert of deploy/prometheus and every panel of deploy/grafana."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tenantry.observability.metrics import REGISTRY, STATE
from tests.observability.test_alert_rules import alerts

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "observability.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def _first_cells(section: str) -> set[str]:
    return set(re.findall(r"^\| `([a-zA-Z_:]+)` \|", section, flags=re.MULTILINE))


def test_the_metric_list_is_the_registry():
    registered = {
        collector._name + ("_total" if collector._type == "counter" else "")
        for collector in REGISTRY._collector_to_names
    } | {family.name + ("_total" if family.kind == "counter" else "") for family in STATE}
    assert _first_cells(_section("Metrics")) == registered


def test_every_alert_and_panel_is_listed():
    assert _first_cells(_section("Alerts (`deploy/prometheus/alerts.yml`)")) == set(alerts())
    panels = _section("Dashboards (`deploy/grafana/`)")
    for path in sorted((ROOT / "deploy" / "grafana").glob("*.json")):
        board = json.loads(path.read_text())
        assert f"**{board['title']}**" in panels
        for panel in board["panels"]:
            assert f"- {panel['title']}\n" in panels, panel["title"]
