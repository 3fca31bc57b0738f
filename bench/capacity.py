"""The capacity model of docs/scaling.md: from costs measured here to what 10,000 tenants and
100,000 users need.

    .venv/bin/python bench/capacity.py           # print the table and write it into docs/scaling.md
    .venv/bin/python bench/capacity.py --check   # exit 1 if docs/scaling.md is not what it gives

Measured inputs (bench/results/):
- load.json (the multi-tenant load test, `python -m bench.load.run`): at the busiest step with
  errors < 1%, the CPU cores of the API processes, the worker, Temporal and PostgreSQL divided by
  the requests a second served: CPU-seconds per request of seed 004's mix (which creates
  documents and incidents, so the worker's share is per request too);
- request_path.json (bench/request_path.py): the API's and PostgreSQL's CPU for the lightest
  authenticated request (`GET /v1/me`), the floor of a read;
- workflows.json (bench/workflows.py): worker, Temporal and PostgreSQL CPU per incident workflow;
- search.json (bench/search.py): CPU per chunk embedded at ingestion.

Assumptions (not measured; change them with the options): seed 000's rate of 10 requests a
minute per user at peak, with every user active at once (its own test's ratio: 1,000 users,
10,000 requests a minute); 10 users per tenant (100,000 / 10,000); incidents and documents a
tenant creates a day beyond the mix, the peak hour at 3x the day's average; utilisation targets
(the API's is the autoscaler's 80%); one API replica is one process, so at most one core.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
BEGIN, END = "<!-- capacity:begin -->", "<!-- capacity:end -->"
PHASES = (("1. one server", 50), ("2. database apart", 200), ("3. load balanced", 1_000))
TARGET_TENANTS, TARGET_USERS = 10_000, 100_000
# Connections each process holds at most: an API replica's pool and overflow and its
# configuration listener (the manifests' TENANTRY_DB_POOL_SIZE=10, MAX_OVERFLOW=5); a worker's.
API_CONNECTIONS, WORKER_CONNECTIONS = 16, 4


@dataclass(frozen=True)
class Costs:
    """CPU-seconds per request of the mix, per incident workflow and per chunk embedded."""

    api: float
    worker: float
    temporal: float
    postgres: float
    me_api: float
    me_postgres: float
    incident_worker: float
    incident_temporal: float
    incident_postgres: float
    chunk: float
    server_rps: float
    server_p95_ms: float
    sources: dict[str, str]


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def _sustained_step(load: dict[str, Any]) -> dict[str, Any]:
    """The busiest step with errors under 1%: CPU-seconds per request are what the model needs,
    the fixed costs (Temporal's and the worker's polling) weigh least there, and they depend far
    less on a shared machine's load than its latency does (the table says which step, and its
    p95)."""
    clean = [
        s
        for s in load["steps"]
        if s["errors"] < 0.01 * max(s["requests"], 1) and s["cpu_cores"].get("api")
    ]
    if not clean:
        raise SystemExit("load.json has no step with errors < 1% and the API's CPU measured")
    return max(clean, key=lambda s: s["achieved_rps"])


def measured_costs() -> Costs:
    load = _load("load.json")
    step = _sustained_step(load)
    cores, rps = step["cpu_cores"], step["achieved_rps"]
    path = _load("request_path.json")["variants"]["tenantry/api_key"]["cpu_us_per_request"]
    flows = _load("workflows.json")
    incidents = flows["setup"]["tenants"] * flows["setup"]["per_tenant"]
    ingestion = _load("search.json")["ingestion"]
    return Costs(
        api=cores["api"] / rps,
        worker=cores.get("worker", 0.0) / rps,
        temporal=cores.get("temporal", 0.0) / rps,
        postgres=cores["postgres"] / rps,
        me_api=path["server"] / 1e6,
        me_postgres=path["postgres"] / 1e6,
        incident_worker=flows["cpu"]["worker_s"] / incidents,
        incident_temporal=flows["cpu"]["temporal_s"] / incidents,
        incident_postgres=flows["cpu"]["postgres_s"] / incidents,
        chunk=ingestion["cpu"]["this_process_cpu_s"] / ingestion["chunks"],
        server_rps=rps,
        server_p95_ms=step["p95_ms"],
        sources={
            "load.json": f"{load['date']}, step {step['offered_rps']:g} req/s "
            f"(achieved {rps:g}, p95 {step['p95_ms']:g} ms), load average before "
            f"{load['load_average_before_after'][0][0]:.1f}, after "
            f"{load['load_average_before_after'][1][0]:.1f}",
            "request_path.json": _load("request_path.json")["date"],
            "workflows.json": flows["date"],
            "search.json": _load("search.json")["date"],
        },
    )


@dataclass(frozen=True)
class Demand:
    requests_per_user_minute: float = 10.0
    active_share: float = 1.0
    users_per_tenant: float = TARGET_USERS / TARGET_TENANTS
    incidents_per_tenant_day: float = 5.0
    documents_per_tenant_day: float = 2.0
    chunks_per_document: float = 16.0
    peak_factor: float = 3.0
    api_utilisation: float = 0.8
    worker_utilisation: float = 0.8
    postgres_utilisation: float = 0.6


def size(tenants: int, users: int, costs: Costs, demand: Demand) -> dict[str, Any]:
    rps = users * demand.active_share * demand.requests_per_user_minute / 60
    # Workflows beyond those the mix itself starts: a tenant's own incidents and documents.
    per_second = tenants * demand.peak_factor / 86_400
    incidents = per_second * demand.incidents_per_tenant_day
    chunks = per_second * demand.documents_per_tenant_day * demand.chunks_per_document
    api_cores = rps * costs.api
    worker_cores = rps * costs.worker + incidents * costs.incident_worker + chunks * costs.chunk
    temporal_cores = rps * costs.temporal + incidents * costs.incident_temporal
    postgres_cores = rps * costs.postgres + incidents * costs.incident_postgres
    api_replicas = max(2, math.ceil(api_cores / demand.api_utilisation))
    workers = max(1, math.ceil(worker_cores / demand.worker_utilisation))
    return {
        "tenants": tenants,
        "users": users,
        "peak_rps": rps,
        "api_cores": api_cores,
        "api_replicas": api_replicas,
        "worker_cores": worker_cores,
        "workers": workers,
        "temporal_cores": temporal_cores,
        "postgres_cores": postgres_cores / demand.postgres_utilisation,
        "connections": api_replicas * API_CONNECTIONS + workers * WORKER_CONNECTIONS,
    }


def table(costs: Costs, demand: Demand) -> str:
    rows = [
        (name, size(tenants, int(tenants * demand.users_per_tenant), costs, demand))
        for name, tenants in PHASES
    ]
    rows.append(("target", size(TARGET_TENANTS, TARGET_USERS, costs, demand)))
    head = (
        "| phase | tenants | users | peak req/s | API cores | API replicas | worker cores | "
        "workers | Temporal cores | PostgreSQL cores | DB connections |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = [
        f"| {name} | {r['tenants']:,} | {r['users']:,} | {r['peak_rps']:,.0f} | "
        f"{r['api_cores']:,.1f} | {r['api_replicas']:,} | {r['worker_cores']:,.1f} | "
        f"{r['workers']:,} | {r['temporal_cores']:,.1f} | {r['postgres_cores']:,.1f} | "
        f"{r['connections']:,} |"
        for name, r in rows
    ]
    inputs = (
        f"Measured costs (CPU-ms): a request of the mix {costs.api * 1e3:.2f} in the API, "
        f"{costs.worker * 1e3:.2f} in the worker, {costs.temporal * 1e3:.2f} in Temporal, "
        f"{costs.postgres * 1e3:.2f} in PostgreSQL; the lightest read (`GET /v1/me`) "
        f"{costs.me_api * 1e3:.2f} API + {costs.me_postgres * 1e3:.2f} PostgreSQL; an incident "
        f"workflow {costs.incident_worker * 1e3:.0f} worker + "
        f"{costs.incident_temporal * 1e3:.0f} Temporal + {costs.incident_postgres * 1e3:.0f} "
        f"PostgreSQL; a chunk embedded {costs.chunk * 1e3:.0f} worker.\n"
        "Sources: "
        + "; ".join(f"`bench/results/{k}` ({v})" for k, v in costs.sources.items())
        + ".\n"
        f"Demand: {demand.requests_per_user_minute:g} requests a minute per user at peak with "
        f"{demand.active_share:.0%} of users active, {demand.users_per_tenant:g} users per tenant, "
        f"{demand.incidents_per_tenant_day:g} incidents and {demand.documents_per_tenant_day:g} "
        f"documents ({demand.chunks_per_document:g} chunks) per tenant a day beyond the mix, peak "
        f"{demand.peak_factor:g}x the average; utilisation targets API "
        f"{demand.api_utilisation:.0%}, workers {demand.worker_utilisation:.0%}, PostgreSQL "
        f"{demand.postgres_utilisation:.0%}; an API replica is one process (one core at most), "
        f"{API_CONNECTIONS} connections each, {WORKER_CONNECTIONS} per worker.\n"
    )
    per_tenant_rps = demand.users_per_tenant * demand.requests_per_user_minute / 60
    per_replica = demand.api_utilisation / costs.api
    total = costs.api + costs.worker + costs.temporal + costs.postgres
    limits = (
        f"One server (this machine, everything on 2 cores) served {costs.server_rps:g} req/s of "
        f"the mix (p95 {costs.server_p95_ms:,.0f} ms): at {per_tenant_rps:.2f} req/s per tenant "
        f"at peak, {costs.server_rps / per_tenant_rps:,.0f} tenants. Its 2 cores alone, with "
        f"nothing else running, would reach {2 / total:,.0f} req/s ({total * 1e3:.1f} CPU-ms a "
        f"request, every process together), {2 / total / per_tenant_rps:,.0f} tenants. One API "
        f"replica (one core) "
        f"at the {demand.api_utilisation:.0%} CPU target serves {per_replica:,.0f} req/s of the "
        f"mix, {demand.api_utilisation / costs.me_api:,.0f} of the lightest read.\n"
    )
    return head + "\n".join(lines) + "\n\n" + inputs + "\n" + limits


def render_into(doc: str, block: str) -> str:
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + block + doc[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/scaling.md")
    parser.add_argument("--active-share", type=float, default=Demand.active_share)
    args = parser.parse_args()
    demand = Demand(active_share=args.active_share)
    block = table(measured_costs(), demand)
    doc = DOC.read_text()
    updated = render_into(doc, block)
    if args.check:
        if updated != doc:
            print("docs/scaling.md's capacity table is not what bench/capacity.py computes from "
                  "bench/results/; run `.venv/bin/python bench/capacity.py`.")  # fmt: skip
            return 1
        return 0
    print(block)
    if args.active_share == Demand.active_share:
        DOC.write_text(updated)
        print(f"written into {DOC.relative_to(DOC.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
