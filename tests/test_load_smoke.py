"""A short run of the multi-tenant load test (bench/load/) against a real API process: 20 tenants,
callers with JWTs and API keys, the whole mix at a modest rate for about 25 s. It asserts counts,
never timing: no 5xx, no id of one tenant in another's answers, every task of the mix exercised."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from bench.load.isolation import IsolationLedger, ids_in
from bench.load.provision import provision
from bench.load.run import run_locust
from tests.servers import start_api

pytestmark = pytest.mark.slow

MAIN_TASKS = (
    "me",
    "documents list",
    "incidents list",
    "config",
    "usage",
    "search",
    "incident create",
    "document create",
)


def test_the_ledger_flags_an_id_that_two_tenants_see():
    ledger = IsolationLedger()
    assert ledger.claim("acme", ["d1", "d2"], where="setup") == 0
    assert ledger.claim("acme", ids_in({"items": [{"id": "d1"}]}, "id"), where="list") == 0
    assert ledger.claim("globex", ids_in([{"id": "d2"}, {"id": "g1"}], "id"), where="list") == 1
    assert ledger.foreign == [{"id": "d2", "seen_by": "globex", "owner": "acme", "in": "list"}]


async def test_the_load_smoke_has_no_5xx_and_no_foreign_id(stack, tmp_path, operator_headers):
    proc, url = start_api(dict(os.environ))
    try:
        # The bootstrap token is spent once an operator exists; an operator's token creates more.
        operator_token = operator_headers["Authorization"].removeprefix("Bearer ")
        plan = await provision(url, operator_token, tenants=20, identities=4)
        (tmp_path / "plan.json").write_text(json.dumps(plan))
        code, report, output = await asyncio.to_thread(
            run_locust,
            plan=tmp_path / "plan.json",
            report=tmp_path / "report.json",
            steps="15:25",
            enforce=False,
            timeout=600,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    totals, isolation = report["totals"], report["isolation"]
    assert totals["status_5xx"] == 0, (totals, output[-3000:])
    assert isolation["foreign_ids"] == 0, isolation
    # Every tenant's seeded document and incident, and more, were checked against the others'.
    assert isolation["ids_checked"] > 2 * 20
    ran = totals["requests_by_task"]
    assert all(ran.get(task, 0) > 0 for task in MAIN_TASKS), ran
    assert {t["slug"] for t in plan["tenants"]} >= set(report["steps"][0]["per_tenant"])
    assert code == 0, output[-3000:]
