"""The multi-tenant load: the tenant API's mix, offered at a rate that steps up to breaking.

Read by Locust (`python -m locust -f bench/load/locustfile.py --headless`, usually through
`python -m bench.load.run`). Configured by environment variables:

* LOAD_PLAN:      the JSON that `bench.load.provision` wrote (host, tenants, callers, owned ids);
* LOAD_STEPS:     `rate:seconds,...`, the offered requests per second of each step;
* LOAD_REPORT:    where to write the report (JSON);
* LOAD_REFERENCE: the rate whose step the thresholds judge (default 167, seed 000's 10,000 a minute);
* LOAD_ENFORCE:   `1` to fail (exit 1) on the per-tenant thresholds, else only on 5xx and leaks;
* LOAD_STOP_AT_BREAK: `1` (default) to stop after the first step past p95 500 ms or 1% errors;
* LOAD_CPU:       `name=pid,...` processes whose CPU each step reports; LOAD_POSTMASTER: a
                  PostgreSQL postmaster, counted with all its children.

One Locust user per caller of the plan (10 per tenant in the full test), each with its own
credential. The load is open: a dispatcher issues tickets at the step's rate (Poisson arrivals),
and an idle user takes one and runs one task of the mix, so the offered rate does not fall when
answers slow down (the achieved rate does; a backlog of tickets is reported).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.queue import Queue
from locust import FastHttpUser, LoadTestShape, events, task

from bench.load.isolation import IsolationLedger, ids_in
from bench.load.report import StepLog, build_report, cpu_snapshot

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
STEPS = [
    (float(rate), float(seconds))
    for rate, seconds in (part.split(":") for part in os.environ["LOAD_STEPS"].split(","))
]
CALLERS = [(tenant, caller) for tenant in PLAN["tenants"] for caller in tenant["callers"]]
SPAWN_PER_SECOND = 200
STOP_AT_BREAK = os.environ.get("LOAD_STOP_AT_BREAK", "1") == "1"

LEDGER = IsolationLedger()
for tenant in PLAN["tenants"]:
    LEDGER.claim(tenant["slug"], tenant["owned_ids"], where="setup")
LOG = StepLog(STEPS)
LOG.cpu = lambda: cpu_snapshot(os.environ.get("LOAD_CPU", ""), os.environ.get("LOAD_POSTMASTER"))
TICKETS: Queue = Queue()
_assigned = iter(range(10**9))

# The mix (percent); approve and webhooks list at small weights.
MIX = {
    "me": 25,
    "documents_list": 15,
    "incidents_list": 15,
    "config": 10,
    "usage": 5,
    "search": 20,
    "incident_create": 5,
    "document_create": 5,
    "incident_approve": 1,
    "webhooks_list": 1,
}
QUERIES = (
    "boiler pressure drops",
    "how do I bleed the radiators",
    "expansion vessel check",
    "presión de la caldera",
    "refill the heating circuit",
)


class TenantCaller(FastHttpUser):
    host = PLAN["host"]
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        tenant, caller = CALLERS[next(_assigned) % len(CALLERS)]
        self.slug = tenant["slug"]
        self.auth = caller["headers"]
        self.kind = caller["kind"]

    def context(self) -> dict[str, Any]:
        return {"tenant": self.slug}

    def wait_time(self) -> float:
        return 0

    @task
    def one_ticket(self) -> None:
        TICKETS.get()
        name = random.choices(list(MIX), weights=list(MIX.values()))[0]
        getattr(self, name)()

    # Each task checks its answer: the expected status, and every id in it the caller's own.

    def _call(self, method: str, path: str, name: str, ok=(200,), ids=(), **kwargs):
        with self.client.request(
            method, path, name=name, headers=self.auth, catch_response=True, **kwargs
        ) as response:
            if response.status_code not in ok:
                response.failure(f"status {response.status_code}")
                return None
            # An expected 4xx (a 409 the API owes a second approver) is a success: say so, or
            # Locust counts every status >= 400 as a failure.
            response.success()
            try:
                body = response.json()
            except ValueError:
                response.failure("not JSON")
                return None
            for check in ids:
                foreign = LEDGER.claim(self.slug, check(body), where=name)
                if foreign:
                    response.failure(f"{foreign} foreign id(s)")
                    LOG.foreign(foreign)
            return body

    def me(self) -> None:
        body = self._call("GET", "/v1/me", "me", ids=[lambda b: [b.get("id")]])
        if body is not None and body.get("tenant") != self.slug:
            LOG.foreign(1)

    def documents_list(self) -> None:
        self._call(
            "GET", "/v1/documents?limit=20", "documents list", ids=[lambda b: ids_in(b, "id")]
        )

    def incidents_list(self) -> None:
        self._call(
            "GET", "/v1/incidents?limit=20", "incidents list", ids=[lambda b: ids_in(b, "id")]
        )

    def config(self) -> None:
        self._call("GET", "/v1/config", "config")

    def usage(self) -> None:
        body = self._call("GET", "/v1/usage", "usage")
        if body is not None and body.get("tenant") != self.slug:
            LOG.foreign(1)

    def search(self) -> None:
        self._call(
            "POST",
            "/v1/search",
            "search",
            json={"query": random.choice(QUERIES), "limit": 5},
            ids=[lambda b: [h.get("document_id") for h in b.get("hits", [])]],
        )

    def incident_create(self) -> None:
        self._call(
            "POST",
            "/v1/incidents",
            "incident create",
            ok=(201,),
            json={"title": "Boiler pressure low", "description": "Pressure below one bar again."},
            ids=[lambda b: [b.get("id")]],
        )

    def document_create(self) -> None:
        self._call(
            "POST",
            "/v1/documents",
            "document create",
            ok=(200, 202),
            json={
                "title": f"Site note {random.randrange(10**6)}",
                "text": "The expansion vessel was recharged to one bar and the loop closed.",
            },
            ids=[lambda b: [b.get("id")]],
        )

    def incident_approve(self) -> None:
        waiting = self._call(
            "GET",
            "/v1/incidents?status=awaiting_approval&limit=5",
            "incidents awaiting approval",
            ids=[lambda b: ids_in(b, "id")],
        )
        rows = (waiting or {}).get("items") or []
        if rows:
            number = random.choice(rows)["number"]
            # 409: another caller acted on it first, an answer the API owes, not a failure.
            self._call(
                "POST",
                f"/v1/incidents/{number}/approve",
                "incident approve",
                ok=(202, 409),
                ids=[lambda b: [b.get("id")] if "number" in b else []],
            )

    def webhooks_list(self) -> None:
        self._call("GET", "/v1/webhooks", "webhooks list", ids=[lambda b: ids_in(b, "id")])


class StepShape(LoadTestShape):
    """All callers connected from the start; the offered rate steps (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = None

    def tick(self):
        if self.dispatcher is None:
            self.dispatcher = gevent.spawn(_dispatch)
        step = LOG.advance(self.get_run_time(), stop_at_break=STOP_AT_BREAK)
        if step is None:
            return None
        return len(CALLERS), SPAWN_PER_SECOND


def _dispatch() -> None:
    """Tickets at the current step's rate, Poisson arrivals; a late generator catches up."""
    due = time.monotonic()
    while True:
        rate = LOG.rate
        if rate <= 0:
            gevent.sleep(0.05)
            due = time.monotonic()
            continue
        due += random.expovariate(rate)
        delay = due - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        TICKETS.put(due)
        LOG.backlog = max(LOG.backlog, TICKETS.qsize())


@events.request.add_listener
def _record(name, response_time, response, exception, context, start_time=None, **_):
    status = 0 if response is None else (response.status_code or 0)
    failed = exception is not None
    LOG.record(
        start_time or time.time(),
        (context or {}).get("tenant", "?"),
        name,
        response_time,
        status,
        failed,
    )


@events.quitting.add_listener
def _report(environment, **_) -> None:
    report = build_report(
        LOG,
        ledger=LEDGER,
        reference=float(os.environ.get("LOAD_REFERENCE", "167")),
        enforce=os.environ.get("LOAD_ENFORCE", "0") == "1",
        tenants=len(PLAN["tenants"]),
        callers=len(CALLERS),
        mix=MIX,
    )
    Path(os.environ["LOAD_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    environment.process_exit_code = report["exit_code"]
