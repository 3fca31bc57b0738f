"""What per-tenant observability costs at 1,000 tenants.

Starts its own embedded PostgreSQL in a temporary home, provisions 1,000 tenants, and measures:

* `read_counts`: the families read at scrape time (`tenant_gauges()` looping over every tenant
  under its own policy, plus the control plane), the cost a scrape pays at most once every
  `TENANTRY_METRICS_STATE_SECONDS`;
* the series a scrape exposes after every tenant has searched, and how many carry a tenant name
  (top 20 by traffic plus enterprise tenants, capped at 100), and the exposition's size;
* one counted event through `tenant_label` (the per-call overhead on the request path);
* `dedicated_worker_tenants()`: the tenants with dedicated workers, whose task queues the health
  checks describe (each tenant's configuration read under its own policy).

Run from the repository root:  .venv/bin/python bench/metrics_scrape.py
Results: printed, and written to bench/results/metrics_scrape.json.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from common import machine, now_iso, summary_ms, table, temporary_stack, write_json
from tenantry.observability import domain
from tenantry.observability.metrics import REGISTRY
from tenantry.observability.state import families, read_counts
from tenantry.observability.tenant_labels import TENANTS
from tenantry.tenancy.context import TenantRef
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate

TENANTS_N = 1000


async def main() -> None:
    with temporary_stack("metrics") as stack:
        db = stack.database(pool_size=4)
        refs = []
        for i in range(TENANTS_N):
            tier = "enterprise" if i % 50 == 0 else "standard"
            data = TenantCreate(slug=f"m-{i:04d}", name=f"M {i}", tier=tier)
            async with db.control() as session:
                tenant = await tenants.create(
                    session, data=data, actor="bench", settings=stack.settings
                )
                refs.append(TenantRef(tenant.id, tenant.slug, tenant.tier))

        reads = []
        for _ in range(10):
            started = time.perf_counter_ns()
            counts = await read_counts(db)
            reads.append(time.perf_counter_ns() - started)

        dedicated = []
        for _ in range(10):
            started = time.perf_counter_ns()
            async with db.control() as session:
                await session.scalars(text("SELECT d_slug FROM dedicated_worker_tenants()"))
            dedicated.append(time.perf_counter_ns() - started)

        # Every tenant searches; the last hundred far more than the rest.
        for round_ in range(5):
            for i, ref in enumerate(refs):
                for _ in range(1 + (round_ * 10 if i >= 900 else 0)):
                    domain.searched(ref, source="api", seconds=0.01, hits=1)
        calls = []
        ref = refs[-1]
        for _ in range(20000):
            started = time.perf_counter_ns()
            domain.searched(ref, source="api", seconds=0.01, hits=1)
            calls.append(time.perf_counter_ns() - started)
        exposition = generate_latest(REGISTRY)
        state = CollectorRegistry()

        class Fixed:
            def collect(self):
                return iter(families(counts))

        state.register(Fixed())
        exposition += generate_latest(state)
        series = [s for f in text_string_to_metric_families(exposition.decode()) for s in f.samples]
        named = {s.labels["tenant"] for s in series if "tenant" in s.labels}
        await db.dispose()

    result = {
        "when": now_iso(),
        "machine": machine(),
        "tenants": TENANTS_N,
        "read_counts_ms": summary_ms(reads),
        "dedicated_worker_tenants_ms": summary_ms(dedicated),
        "searched_call_us": {
            k.replace("_ms", "_us"): round(v * 1000, 2)
            for k, v in summary_ms(calls).items()
            if k != "n"
        },
        "series": len(series),
        "tenant_label_values": len(named),
        "named_tenants": len(TENANTS.named()),
        "exposition_bytes": len(exposition),
    }
    print(
        table(
            ["measure", "value"],
            [
                ["read_counts p50 (ms)", result["read_counts_ms"]["p50_ms"]],
                ["read_counts p95 (ms)", result["read_counts_ms"]["p95_ms"]],
                [
                    "dedicated_worker_tenants p50 (ms)",
                    result["dedicated_worker_tenants_ms"]["p50_ms"],
                ],
                [
                    "dedicated_worker_tenants p95 (ms)",
                    result["dedicated_worker_tenants_ms"]["p95_ms"],
                ],
                ["one counted search p50 (µs)", result["searched_call_us"]["p50_us"]],
                ["series in a scrape", result["series"]],
                ["tenant label values", result["tenant_label_values"]],
                ["exposition (bytes)", result["exposition_bytes"]],
            ],
        )
    )
    write_json("metrics_scrape.json", result)


if __name__ == "__main__":
    asyncio.run(main())
