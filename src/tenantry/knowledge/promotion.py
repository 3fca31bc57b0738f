"""A tenant past `hnsw_threshold` chunks gets its own HNSW index: a partial index on its rows.

Small tenants are searched exactly through their `tenant_id` rows (recall 1.0, a few ms at
thousands of chunks); a shared HNSW index filtered by tenant would lose almost all recall. Building
an index needs the table's owner, so this runs with the migration role (the maintenance side of
`tenantry run`, or `tenantry knowledge promote`), never as the application, and concurrently, so
nobody's writes wait for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tenantry.db.urls import libpq_dsn
from tenantry.settings import OWNER_ROLE


def index_name(tenant_id: uuid.UUID) -> str:
    return f"ix_chunks_hnsw_{tenant_id.hex}"


@dataclass(frozen=True)
class Promotion:
    tenant_id: uuid.UUID
    chunks: int
    built: bool


def promote(
    admin_url: str, *, threshold: int, tenant_id: uuid.UUID | None = None
) -> list[Promotion]:
    """Build the missing HNSW indexes of tenants at or past the threshold."""
    done: list[Promotion] = []
    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        tenants = (
            [tenant_id]
            if tenant_id
            else [
                row[0]
                for row in conn.execute("SELECT id FROM tenants WHERE status = 'active'").fetchall()
            ]
        )
        for tid in tenants:
            chunks = _count(conn, tid)
            if chunks < threshold or _has_index(conn, tid):
                continue
            conn.execute(
                sql.SQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON chunks "
                    "USING hnsw (embedding vector_cosine_ops) WHERE tenant_id = {}"
                ).format(sql.Identifier(index_name(tid)), sql.Literal(str(tid)))
            )
            done.append(Promotion(tid, chunks, True))
        if done:
            conn.execute(
                "ANALYZE chunks"
            )  # so the planner weighs the new indexes with fresh counts
    return done


def _count(conn: psycopg.Connection, tenant_id: uuid.UUID) -> int:
    # The owner is under forced RLS too: count as the tenant, in a transaction of its own.
    with conn.transaction():
        conn.execute("SELECT set_config('tenantry.tenant_id', %s, true)", [str(tenant_id)])
        return conn.execute(
            "SELECT count(*) FROM chunks WHERE tenant_id = %s", [tenant_id]
        ).fetchone()[0]


def _has_index(conn: psycopg.Connection, tenant_id: uuid.UUID) -> bool:
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = %s",
        [index_name(tenant_id)],
    ).fetchone()
    if row is not None and not row[0]:
        # An interrupted concurrent build leaves an invalid index behind: drop it and build again.
        conn.execute(
            sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(index_name(tenant_id)))
        )
        return False
    return row is not None


def drop_index(admin_url: str, *, tenant_id: uuid.UUID) -> bool:
    """Drop a deleted tenant's own HNSW index (concurrently); True when there was one."""
    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(OWNER_ROLE)))
        found = conn.execute(
            "SELECT 1 FROM pg_class WHERE relname = %s", [index_name(tenant_id)]
        ).fetchone()
        conn.execute(
            sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                sql.Identifier(index_name(tenant_id))
            )
        )
    return found is not None
