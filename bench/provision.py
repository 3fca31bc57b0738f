"""Provisioning throughput: pooled tenants (RLS) versus schema-per-tenant (django-tenants style).

Starts its own embedded PostgreSQL in a temporary home and provisions, interleaved (A/B order
alternating per iteration), 1,000 tenants each way:

* pooled: `tenants.service.create` in its own `Database.control()` transaction as `tenantry_app`
  (a `tenants` row plus the first, hash-chained audit event in the shared `audit_events`);
* schema: in its own transaction as `tenantry_owner`, `CREATE SCHEMA tenant_<n>`, a copy of the
  `audit_events` table (same columns, primary key, unique constraint and index; no RLS, no foreign
  key, no trigger) and one row in a shared `public.schema_tenants` registry.

Reports tenants per second for each, the ratio pooled/schema, per-tenant latency, and the catalog
(pg_class, pg_attribute rows) and database size before and after.

Run from the repository root:  .venv/bin/python bench/provision.py
Results: printed, and written to bench/results/provision.json.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

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
from tenantry.db.urls import sqlalchemy_url
from tenantry.settings import OWNER_ROLE
from tenantry.stack import Stack
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate

TENANTS = 1_000
WARMUP = 20
WINDOW = 100  # tenants at the start and the end, to see whether provisioning slows down

REGISTRY = f"""
CREATE TABLE public.schema_tenants (
    id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    schema_name text NOT NULL UNIQUE,
    name text NOT NULL,
    tier text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.schema_tenants OWNER TO {OWNER_ROLE};
"""

# The tables a pooled tenant has (today: audit_events), as the migration creates them, per schema.
SCHEMA_DDL = [
    "CREATE SCHEMA {schema}",
    """
    CREATE TABLE {schema}.audit_events (
        tenant_id uuid NOT NULL,
        id uuid NOT NULL,
        seq bigint NOT NULL,
        occurred_at timestamptz NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        target text NOT NULL,
        request_id text,
        before jsonb,
        after jsonb,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, seq)
    )
    """,
    "CREATE INDEX ix_audit_events_tenant_id_occurred_at "
    "ON {schema}.audit_events (tenant_id, occurred_at)",
]
REGISTER = text(
    "INSERT INTO public.schema_tenants (id, slug, schema_name, name, tier) "
    "VALUES (:id, :slug, :schema_name, :name, :tier)"
)

COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""
INDEXES = """
SELECT regexp_replace(pg_get_indexdef(indexrelid), ' ON \\S+ ', ' ON t ') FROM pg_index
WHERE indrelid = %s::regclass ORDER BY 1
"""
CATALOG = """
WITH per_schema AS (
    SELECT c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname LIKE 'tenant\\_%%'
)
SELECT (SELECT count(*) FROM pg_class),
       (SELECT count(*) FROM pg_attribute),
       -- the schemas' relations, plus a TOAST table and its index for each that has one
       (SELECT count(*) + 2 * count(NULLIF(reltoastrelid, 0)) FROM per_schema),
       pg_database_size(current_database())
"""


def catalog(stack: Stack) -> dict[str, int]:
    with admin_connect(stack) as conn:
        pg_class, pg_attribute, in_schemas, size = conn.execute(CATALOG).fetchone()
    return {
        "pg_class_rows": pg_class,
        "pg_attribute_rows": pg_attribute,
        "pg_class_rows_of_tenant_schemas": in_schemas,
        "pg_class_rows_outside_tenant_schemas": pg_class - in_schemas,
        "database_bytes": size,
    }


def same_structure(stack: Stack, copy: str) -> bool:
    """The schema copy has the columns and indexes of the pooled `audit_events`."""
    with admin_connect(stack) as conn:
        shape = [
            [conn.execute(query, [table_name]).fetchall() for query in (COLUMNS, INDEXES)]
            for table_name in ("public.audit_events", copy)
        ]
    return shape[0] == shape[1]


def rate(samples_ns: list[int]) -> float:
    return len(samples_ns) / (sum(samples_ns) / 1e9)


async def main() -> None:
    started = time.perf_counter()
    with temporary_stack("provision") as stack:
        version = server_version(stack)
        settings = stack.settings
        with admin_connect(stack) as conn:
            conn.execute(REGISTRY)

        db = stack.database(pool_size=1)
        owner_engine = create_async_engine(
            sqlalchemy_url(stack.admin_url), pool_size=1, max_overflow=0, pool_pre_ping=True
        )

        @event.listens_for(owner_engine.sync_engine, "connect")
        def _as_owner(dbapi_connection: Any, _record: Any) -> None:
            # The superuser acts as tenantry_owner, so every schema is owned like real tables.
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET ROLE {OWNER_ROLE}")
            cursor.close()
            dbapi_connection.commit()

        async def pooled(slug: str) -> None:
            data = TenantCreate(slug=slug, name=f"Tenant {slug}", tier="free")
            async with db.control() as session:
                await tenants.create(session, data=data, actor="bench", settings=settings)

        async def per_schema(slug: str) -> None:
            schema = "tenant_" + slug.replace("-", "_")
            async with owner_engine.begin() as conn:
                for ddl in SCHEMA_DDL:
                    await conn.execute(text(ddl.format(schema=schema)))
                await conn.execute(
                    REGISTER,
                    {
                        "id": uuid.uuid4(),
                        "slug": slug,
                        "schema_name": schema,
                        "name": f"Tenant {slug}",
                        "tier": "free",
                    },
                )

        paths = {"pooled": pooled, "schema": per_schema}
        for n in range(WARMUP):
            for path in paths.values():
                await path(f"warm-{n:04d}")
        structure_ok = same_structure(stack, "tenant_warm_0000.audit_events")
        if not structure_ok:
            raise SystemExit("the schema copy of audit_events differs from the pooled table")

        before = catalog(stack)
        samples: dict[str, list[int]] = {name: [] for name in paths}
        gc.collect()
        gc.disable()
        try:
            for n in range(TENANTS):
                order = ("pooled", "schema") if n % 2 == 0 else ("schema", "pooled")
                for name in order:
                    begin = time.perf_counter_ns()
                    await paths[name](f"bench-{n:04d}")
                    samples[name].append(time.perf_counter_ns() - begin)
        finally:
            gc.enable()
        after = catalog(stack)

        with admin_connect(stack) as conn:
            counts = {
                "tenants": conn.execute("SELECT count(*) FROM tenants").fetchone()[0],
                "audit_events": conn.execute("SELECT count(*) FROM audit_events").fetchone()[0],
                "schema_tenants": conn.execute("SELECT count(*) FROM schema_tenants").fetchone()[0],
            }
        await db.dispose()
        await owner_engine.dispose()

    report(version, samples, before, after, counts, time.perf_counter() - started)


def report(
    version: str,
    samples: dict[str, list[int]],
    before: dict[str, int],
    after: dict[str, int],
    counts: dict[str, int],
    wall_s: float,
) -> None:
    results: dict[str, Any] = {}
    rows = []
    for name, values in samples.items():
        entry = {
            "tenants": len(values),
            "tenants_per_s": round(rate(values), 1),
            "first_100_per_s": round(rate(values[:WINDOW]), 1),
            "last_100_per_s": round(rate(values[-WINDOW:]), 1),
            "latency": summary_ms(values),
        }
        results[name] = entry
        lat = entry["latency"]
        rows.append(
            [
                name,
                entry["tenants_per_s"],
                lat["p50_ms"],
                lat["p95_ms"],
                lat["mean_ms"],
                entry["first_100_per_s"],
                entry["last_100_per_s"],
            ]
        )
    ratio = results["pooled"]["tenants_per_s"] / results["schema"]["tenants_per_s"]
    pg_class_added = after["pg_class_rows"] - before["pg_class_rows"]
    schema_added = (
        after["pg_class_rows_of_tenant_schemas"] - before["pg_class_rows_of_tenant_schemas"]
    )
    pooled_added = (
        after["pg_class_rows_outside_tenant_schemas"]
        - before["pg_class_rows_outside_tenant_schemas"]
    )
    pg_attribute_added = after["pg_attribute_rows"] - before["pg_attribute_rows"]
    catalog_info = {
        "before": before,
        "after": after,
        # What each approach's catalog would hold on its own: the pooled one is everything but
        # the tenant schemas (and their TOAST), the schema one adds those.
        "pooled_pg_class_rows_after": after["pg_class_rows_outside_tenant_schemas"],
        "schema_pg_class_rows_after": after["pg_class_rows"],
        "pooled_pg_class_rows_added": pooled_added,
        "schema_pg_class_rows_added": schema_added,
        "schema_pg_class_rows_per_tenant": round(schema_added / len(samples["schema"]), 2),
        "pg_class_rows_added_total": pg_class_added,
        "pg_attribute_rows_added": pg_attribute_added,
    }
    result = {
        "benchmark": "provision",
        "date": now_iso(),
        "machine": machine(),
        "postgresql": version,
        "iterations": {
            "tenants_per_approach": TENANTS,
            "warmup_per_approach": WARMUP,
            "order": "interleaved, A/B order alternating per tenant",
        },
        "approaches": results,
        "ratio_pooled_over_schema": round(ratio, 3),
        "catalog": catalog_info,
        "row_counts_after": counts,
        "wall_s": round(wall_s, 1),
    }
    path = write_json("provision.json", result)

    print(
        f"Provisioning - PostgreSQL {version}, {os.cpu_count()} cores, {TENANTS} tenants per "
        f"approach, interleaved (+{WARMUP} warm-up each)"
    )
    print()
    print(
        table(
            [
                "approach",
                "tenants/s",
                "p50 ms",
                "p95 ms",
                "mean ms",
                f"first {WINDOW}/s",
                f"last {WINDOW}/s",
            ],
            rows,
        )
    )
    print()
    print(f"Ratio pooled/schema (tenants per second): {ratio:.2f}x")
    print(
        f"Catalog (pg_class rows) after: pooled {catalog_info['pooled_pg_class_rows_after']} "
        f"(+{pooled_added} for {len(samples['pooled'])} tenants), schema-per-tenant "
        f"{catalog_info['schema_pg_class_rows_after']} (+{schema_added}, "
        f"{catalog_info['schema_pg_class_rows_per_tenant']:g} per tenant); pg_attribute "
        f"+{pg_attribute_added}; database {before['database_bytes'] / 2**20:.1f} -> "
        f"{after['database_bytes'] / 2**20:.1f} MiB"
    )
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


if __name__ == "__main__":
    asyncio.run(main())
