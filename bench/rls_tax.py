"""The RLS tax: what a tenant-scoped request costs over the same query run as a superuser.

Starts its own embedded PostgreSQL in a temporary home, fills `bench_items` (100 tenants x 1,000
rows, forced RLS with the production policy shape) and measures, interleaved (A/B alternating per
iteration), three queries - a primary-key lookup, a per-tenant count and a per-tenant list
(ORDER BY created_at DESC LIMIT 50) - two ways:

* service: `Database.tenant(tid)` as `tenantry_app` (RLS on; the driver in autocommit, and
  `Database._transaction` sends an explicit `BEGIN` pipelined with `set_config` - one round trip -
  then the query, then COMMIT via the driver), the query also naming `tenant_id = :tid`;
* superuser: an equivalent SQLAlchemy async engine on the admin URL (psycopg's implicit BEGIN),
  one transaction per operation, plain `WHERE tenant_id = :tid`, no `set_config`.

It also times the ways of setting the tenant with raw psycopg, on a primary-key lookup:

* separate_round_trips: BEGIN, set_config, the query and COMMIT each its own round trip;
* implicit_begin_pipeline: psycopg's implicit BEGIN (not autocommit) with set_config in a pipeline,
  then the query, then commit() - the previous approach of `Database`: psycopg sends its implicit
  BEGIN and waits for the answer before the pipeline, so it saves nothing over separate trips;
* service_explicit_begin: autocommit, explicit BEGIN + set_config in one pipeline, the query,
  then commit() - exactly what `Database._transaction` now does;
* one_pipeline: BEGIN, set_config and the query in one pipeline, then COMMIT (a lower bound);
* superuser_no_tenant: superuser, implicit BEGIN, the query, commit(); nothing set (baseline);

and counts the round trips of every path from a libpq trace.

Run from the repository root:  .venv/bin/python bench/rls_tax.py
Results: printed, and written to bench/results/rls_tax.json.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.pq import Trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from common import (
    admin_connect,
    machine,
    now_iso,
    server_version,
    summary_ms,
    table,
    temporary_stack,
    write_json,
)
from tenantry.db.session import SET_TENANT
from tenantry.db.urls import libpq_dsn, sqlalchemy_url
from tenantry.settings import APP_ROLE, OWNER_ROLE
from tenantry.stack import Stack

TENANTS = 100
ROWS_PER_TENANT = 1_000
WARMUP = 200
ITERATIONS = 2_000
RAW_ITERATIONS = 2_000
TRACE_OPS = 5
EXPLAIN_RUNS = 100
SEED = 20261124

TENANT_SETTING = "(SELECT nullif(current_setting('tenantry.tenant_id', true), '')::uuid)"

SCHEMA = [
    f"SET ROLE {OWNER_ROLE}",
    """
    CREATE TABLE bench_items (
        tenant_id uuid NOT NULL,
        id uuid NOT NULL,
        title text,
        created_at timestamptz,
        PRIMARY KEY (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_bench_items_tenant_id_created_at ON bench_items (tenant_id, created_at)",
    "ALTER TABLE bench_items ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE bench_items FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON bench_items "
    f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON bench_items TO {APP_ROLE}",
    "RESET ROLE",
]

FILL = """
INSERT INTO bench_items (tenant_id, id, title, created_at)
SELECT t.tid, gen_random_uuid(), 'item ' || g, now() - g * interval '1 minute'
FROM unnest(%s::uuid[]) AS t(tid), generate_series(1, %s) AS g
"""

# The same three queries for both paths; each names the tenant, as the services do.
QUERIES = {
    "pk_lookup": "SELECT id, title, created_at FROM bench_items "
    "WHERE tenant_id = :tid AND id = :id",
    "count": "SELECT count(*) FROM bench_items WHERE tenant_id = :tid",
    "list_50": "SELECT id, title, created_at FROM bench_items "
    "WHERE tenant_id = :tid ORDER BY created_at DESC LIMIT 50",
}
RAW_PK = "SELECT id, title, created_at FROM bench_items WHERE tenant_id = %s AND id = %s"

Op = Callable[[], Awaitable[Any]]

# The raw-psycopg variant that is what `Database._transaction` does today.
SERVICE_VARIANT = "service_explicit_begin"
VARIANT_LABELS = {
    "separate_round_trips": "BEGIN / set_config / query / COMMIT, one round trip each",
    "implicit_begin_pipeline": "implicit BEGIN + pipeline (previous approach)",
    SERVICE_VARIANT: "explicit BEGIN + set_config pipelined, query, COMMIT (the service)",
    "one_pipeline": "BEGIN + set_config + query pipelined, COMMIT",
    "superuser_no_tenant": "superuser: implicit BEGIN, query, COMMIT; no tenant",
}


def create_data(stack: Stack) -> tuple[list[uuid.UUID], dict[uuid.UUID, list[uuid.UUID]]]:
    tenant_ids = [uuid.uuid4() for _ in range(TENANTS)]
    with admin_connect(stack) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(FILL, [tenant_ids, ROWS_PER_TENANT])
        conn.execute("VACUUM ANALYZE bench_items")
        ids: dict[uuid.UUID, list[uuid.UUID]] = {t: [] for t in tenant_ids}
        for tid, item_id in conn.execute("SELECT tenant_id, id FROM bench_items"):
            ids[tid].append(item_id)
    return tenant_ids, ids


def round_trips_in(trace_file: str) -> int:
    """Client-to-server turns in a libpq trace: each run of F lines followed by a B line."""
    turns, last = 0, None
    for line in Path(trace_file).read_text().splitlines():
        direction = next((f for f in line.split("\t") if f in ("F", "B")), None)
        if direction == "B" and last == "F":
            turns += 1
        last = direction or last
    return turns


async def count_round_trips(pgconn: Any, op: Op, ops: int = TRACE_OPS) -> float:
    """Round trips per operation on the one connection `op` uses, from a libpq trace."""
    fd, path = tempfile.mkstemp(prefix="rls-tax-", suffix=".trace")
    try:
        pgconn.trace(os.dup(fd))
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        for _ in range(ops):
            await op()
        pgconn.untrace()
        return round_trips_in(path) / ops
    finally:
        os.close(fd)
        os.unlink(path)


async def timed(op: Op) -> int:
    start = time.perf_counter_ns()
    await op()
    return time.perf_counter_ns() - start


async def main() -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    with temporary_stack("rls") as stack:
        version = server_version(stack)
        tenant_ids, item_ids = create_data(stack)

        db = stack.database(pool_size=1)
        su_engine = create_async_engine(
            sqlalchemy_url(stack.admin_url), pool_size=1, max_overflow=0, pool_pre_ping=True
        )
        su_sessions = async_sessionmaker(su_engine, expire_on_commit=False)
        statements = {kind: text(sql) for kind, sql in QUERIES.items()}

        def service(kind: str, params: dict[str, Any]) -> Op:
            async def op() -> list[Any]:
                async with db.tenant(params["tid"]) as session:
                    return (await session.execute(statements[kind], params)).all()

            return op

        def superuser(kind: str, params: dict[str, Any]) -> Op:
            async def op() -> list[Any]:
                async with su_sessions() as session, session.begin():
                    return (await session.execute(statements[kind], params)).all()

            return op

        def params_for(kind: str) -> dict[str, Any]:
            tid = rng.choice(tenant_ids)
            if kind == "pk_lookup":
                return {"tid": tid, "id": rng.choice(item_ids[tid])}
            return {"tid": tid}

        # Sanity: both paths agree, and RLS is really on for the service path.
        checks: dict[str, Any] = {}
        probe, other = tenant_ids[0], tenant_ids[1]
        for kind in QUERIES:
            p = {"tid": probe, "id": item_ids[probe][0]}
            a, b = await service(kind, p)(), await superuser(kind, p)()
            checks[f"{kind}_same_rows"] = sorted(map(tuple, a)) == sorted(map(tuple, b))
        async with db.tenant(probe) as session:
            hidden = await session.scalar(statements["count"], {"tid": other})
        checks["other_tenant_rows_visible_to_service"] = hidden
        if not all(v is True for k, v in checks.items() if k.endswith("same_rows")) or hidden:
            raise SystemExit(f"sanity checks failed: {checks}")

        # Both engines hold one connection; keep its pgconn to trace round trips.
        async with db.engine.connect() as conn:
            app_pgconn = (await conn.get_raw_connection()).driver_connection.pgconn
        async with su_engine.connect() as conn:
            su_pgconn = (await conn.get_raw_connection()).driver_connection.pgconn

        paths = {"service": service, "superuser": superuser}
        samples: dict[str, dict[str, list[int]]] = {k: {p: [] for p in paths} for k in QUERIES}
        gc.collect()
        gc.disable()
        try:
            for i in range(WARMUP + ITERATIONS):
                for kind in QUERIES:
                    params = params_for(kind)
                    order = ("service", "superuser") if i % 2 == 0 else ("superuser", "service")
                    for path in order:
                        elapsed = await timed(paths[path](kind, params))
                        if i >= WARMUP:
                            samples[kind][path].append(elapsed)
        finally:
            gc.enable()

        round_trips: dict[str, dict[str, float]] = {}
        for kind in QUERIES:
            params = params_for(kind)
            round_trips[kind] = {
                "service": await count_round_trips(app_pgconn, service(kind, params)),
                "superuser": await count_round_trips(su_pgconn, superuser(kind, params)),
            }
        await db.dispose()
        await su_engine.dispose()

        # Setting the tenant: separate round trips versus pipelined, with raw psycopg.
        app_dsn, admin_dsn = libpq_dsn(stack.app_url), libpq_dsn(stack.admin_url)
        app_auto = await psycopg.AsyncConnection.connect(app_dsn, autocommit=True)
        app_tx = await psycopg.AsyncConnection.connect(app_dsn)
        su_tx = await psycopg.AsyncConnection.connect(admin_dsn)
        raw_params: list[tuple[uuid.UUID, uuid.UUID]] = []

        async def separate() -> list[Any]:
            tid, item = raw_params[-1]
            await app_auto.execute("BEGIN")
            await app_auto.execute(SET_TENANT, [str(tid)])
            rows = await (await app_auto.execute(RAW_PK, [tid, item])).fetchall()
            await app_auto.execute("COMMIT")
            return rows

        async def implicit_begin_pipeline() -> list[Any]:
            # The previous approach: psycopg's implicit BEGIN + set_config in a pipeline, the query.
            tid, item = raw_params[-1]
            async with app_tx.pipeline():
                await app_tx.execute(SET_TENANT, [str(tid)])
            rows = await (await app_tx.execute(RAW_PK, [tid, item])).fetchall()
            await app_tx.commit()
            return rows

        async def service_explicit_begin() -> list[Any]:
            # Exactly Database._transaction: autocommit, BEGIN + set_config pipelined, the query,
            # then COMMIT through the driver's commit().
            tid, item = raw_params[-1]
            async with app_auto.pipeline():
                await app_auto.execute("BEGIN")
                await app_auto.execute(SET_TENANT, [str(tid)])
            rows = await (await app_auto.execute(RAW_PK, [tid, item])).fetchall()
            await app_auto.commit()
            return rows

        async def one_pipeline() -> list[Any]:
            # BEGIN, set_config and the query in one pipeline (explicit BEGIN), then COMMIT.
            tid, item = raw_params[-1]
            async with app_auto.pipeline():
                await app_auto.execute("BEGIN")
                await app_auto.execute(SET_TENANT, [str(tid)])
                cursor = await app_auto.execute(RAW_PK, [tid, item])
            rows = await cursor.fetchall()
            await app_auto.execute("COMMIT")
            return rows

        async def no_tenant() -> list[Any]:
            # Baseline: superuser, implicit BEGIN, the query, COMMIT; nothing set.
            tid, item = raw_params[-1]
            rows = await (await su_tx.execute(RAW_PK, [tid, item])).fetchall()
            await su_tx.commit()
            return rows

        raw_ops: dict[str, tuple[Op, Any]] = {
            "separate_round_trips": (separate, app_auto.pgconn),
            "implicit_begin_pipeline": (implicit_begin_pipeline, app_tx.pgconn),
            SERVICE_VARIANT: (service_explicit_begin, app_auto.pgconn),
            "one_pipeline": (one_pipeline, app_auto.pgconn),
            "superuser_no_tenant": (no_tenant, su_tx.pgconn),
        }
        raw_samples: dict[str, list[int]] = {name: [] for name in raw_ops}
        names = list(raw_ops)
        gc.collect()
        gc.disable()
        try:
            for i in range(WARMUP + RAW_ITERATIONS):
                tid = rng.choice(tenant_ids)
                raw_params.append((tid, rng.choice(item_ids[tid])))
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    elapsed = await timed(raw_ops[name][0])
                    if i >= WARMUP:
                        raw_samples[name].append(elapsed)
        finally:
            gc.enable()
        raw_round_trips = {
            name: await count_round_trips(pgconn, op) for name, (op, pgconn) in raw_ops.items()
        }

        # Where the time goes on the server: plan + execution time (EXPLAIN ANALYZE, TIMING OFF).
        server_ms: dict[str, dict[str, float]] = {}
        for kind, sql in QUERIES.items():
            raw_sql = sql.replace(":tid", "%(tid)s").replace(":id", "%(id)s")
            explain = f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {raw_sql}"
            times: dict[str, list[float]] = {"service": [], "superuser": []}
            for _ in range(EXPLAIN_RUNS):
                params = params_for(kind)
                await app_auto.execute("BEGIN")
                await app_auto.execute(SET_TENANT, [str(params["tid"])])
                (plan,) = await (await app_auto.execute(explain, params)).fetchone()
                await app_auto.execute("COMMIT")
                times["service"].append(_server_time(plan))
                (plan,) = await (await su_tx.execute(explain, params)).fetchone()
                await su_tx.commit()
                times["superuser"].append(_server_time(plan))
            server_ms[kind] = {p: round(sorted(v)[len(v) // 2], 4) for p, v in times.items()}

        for conn in (app_auto, app_tx, su_tx):
            await conn.close()

    report(
        version=version,
        samples=samples,
        round_trips=round_trips,
        raw_samples=raw_samples,
        raw_round_trips=raw_round_trips,
        server_ms=server_ms,
        checks=checks,
        wall_s=time.perf_counter() - started,
    )


def _server_time(plan: Any) -> float:
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]
    return top["Planning Time"] + top["Execution Time"]


def report(
    *,
    version: str,
    samples: dict[str, dict[str, list[int]]],
    round_trips: dict[str, dict[str, float]],
    raw_samples: dict[str, list[int]],
    raw_round_trips: dict[str, float],
    server_ms: dict[str, dict[str, float]],
    checks: dict[str, Any],
    wall_s: float,
) -> None:
    queries: dict[str, Any] = {}
    rows = []
    for kind, by_path in samples.items():
        svc, su = summary_ms(by_path["service"]), summary_ms(by_path["superuser"])
        entry = {
            "sql": QUERIES[kind],
            "service": svc,
            "superuser": su,
            "ratio_p50": round(svc["p50_ms"] / su["p50_ms"], 3),
            "ratio_mean": round(svc["mean_ms"] / su["mean_ms"], 3),
            "added_ms_p50": round(svc["p50_ms"] - su["p50_ms"], 4),
            "added_ms_mean": round(svc["mean_ms"] - su["mean_ms"], 4),
            "round_trips": round_trips[kind],
            "server_plan_plus_exec_ms_p50": server_ms[kind],
        }
        queries[kind] = entry
        rows.append(
            [
                kind,
                svc["p50_ms"],
                su["p50_ms"],
                svc["mean_ms"],
                su["mean_ms"],
                f"{entry['ratio_p50']:.2f}x / {entry['ratio_mean']:.2f}x",
                entry["added_ms_p50"],
                entry["added_ms_mean"],
                f"{round_trips[kind]['service']:g} / {round_trips[kind]['superuser']:g}",
                f"{server_ms[kind]['service']:.3f} / {server_ms[kind]['superuser']:.3f}",
            ]
        )

    setting: dict[str, Any] = {}
    raw_rows = []
    base = summary_ms(raw_samples["superuser_no_tenant"])
    for name, values in raw_samples.items():
        s = summary_ms(values)
        setting[name] = {"label": VARIANT_LABELS[name], **s, "round_trips": raw_round_trips[name]}
        raw_rows.append(
            [
                f"{name}{' *' if name == SERVICE_VARIANT else ''}",
                VARIANT_LABELS[name],
                s["p50_ms"],
                s["mean_ms"],
                round(s["p50_ms"] - base["p50_ms"], 4),
                f"{raw_round_trips[name]:g}",
            ]
        )
    service_rts = raw_round_trips[SERVICE_VARIANT]
    saved = raw_round_trips["separate_round_trips"] - service_rts
    saved_vs_previous = raw_round_trips["implicit_begin_pipeline"] - service_rts
    svc_p50 = setting[SERVICE_VARIANT]["p50_ms"]
    prev_p50 = setting["implicit_begin_pipeline"]["p50_ms"]

    result = {
        "benchmark": "rls_tax",
        "date": now_iso(),
        "machine": machine(),
        "postgresql": version,
        "data": {"tenants": TENANTS, "rows_per_tenant": ROWS_PER_TENANT},
        "iterations": {
            "warmup_per_path_and_query": WARMUP,
            "measured_per_path_and_query": ITERATIONS,
            "tenant_setting_warmup_per_variant": WARMUP,
            "tenant_setting_measured_per_variant": RAW_ITERATIONS,
            "traced_ops_per_path": TRACE_OPS,
            "explain_runs_per_path_and_query": EXPLAIN_RUNS,
            "order": "interleaved, A/B order alternating per iteration",
        },
        "queries": queries,
        "tenant_setting": {
            "query": RAW_PK,
            "service_variant": SERVICE_VARIANT,
            "variants": setting,
            "round_trips_saved_by_service_vs_separate": saved,
            "round_trips_saved_by_service_vs_previous_approach": saved_vs_previous,
            "service_vs_previous_approach_p50_ms": round(svc_p50 - prev_p50, 4),
            "round_trips_saved_by_one_pipeline": raw_round_trips["separate_round_trips"]
            - raw_round_trips["one_pipeline"],
        },
        "checks": checks,
        "wall_s": round(wall_s, 1),
    }
    path = write_json("rls_tax.json", result)

    print(
        f"RLS tax - PostgreSQL {version}, {os.cpu_count()} cores, {TENANTS} tenants x "
        f"{ROWS_PER_TENANT} rows, {ITERATIONS} interleaved iterations per path (+{WARMUP} warm-up)"
    )
    print()
    print(
        table(
            [
                "query",
                "svc p50",
                "su p50",
                "svc mean",
                "su mean",
                "ratio p50/mean",
                "+ms p50",
                "+ms mean",
                "RTs svc/su",
                "server ms svc/su",
            ],
            rows,
        )
    )
    print(
        "RTs include the pool's pre-ping: service = ping, BEGIN + set_config (pipelined), query, "
        "COMMIT; superuser = ping, BEGIN, query, COMMIT."
    )
    print()
    print(f"Setting the tenant (raw psycopg, pk lookup, {RAW_ITERATIONS} iterations per variant)")
    print()
    print(
        table(
            ["variant", "what", "p50 ms", "mean ms", "+ms p50 vs no tenant", "RTs"],
            raw_rows,
            left=2,
        )
    )
    print()
    print(f"* the service: Database._transaction does what {SERVICE_VARIANT} does.")
    print(
        f"Round trips saved by the service vs separate round trips: {saved:g}; "
        f"vs the previous approach (implicit BEGIN + pipeline): {saved_vs_previous:g} "
        f"(p50 {svc_p50:.3f} vs {prev_p50:.3f} ms)"
    )
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


if __name__ == "__main__":
    asyncio.run(main())
