"""The catalog, not the models, proves that every tenant-owned table is isolated."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from tenantry.db.session import UnsafeDatabaseRole, create_app_engine
from tenantry.db.urls import libpq_dsn, sqlalchemy_url
from tests.db.catalog_rules import violations


def test_every_tenant_table_is_isolated(admin_sql):
    tables = admin_sql.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
    ).fetchone()[0]
    assert tables >= 1
    assert violations(admin_sql) == []


def test_a_table_that_forgets_rls_is_caught(stack):
    with psycopg.connect(libpq_dsn(stack.admin_url)) as conn:
        conn.execute("SET ROLE tenantry_owner")
        conn.execute("CREATE TABLE forgotten (id int PRIMARY KEY, tenant_id uuid NOT NULL)")
        conn.execute("CREATE VIEW leaky AS SELECT * FROM audit_events")
        found = violations(conn)
        conn.rollback()
    assert "forgotten: row-level security is not enabled" in found
    assert "forgotten: row-level security is not forced" in found
    assert "forgotten: expected one policy, found 0" in found
    assert "forgotten: index forgotten_pkey does not lead with tenant_id" in found
    assert "view leaky must be security_invoker" in found


def test_a_weak_policy_is_caught(stack):
    with psycopg.connect(libpq_dsn(stack.admin_url)) as conn:
        conn.execute("SET ROLE tenantry_owner")
        conn.execute("CREATE TABLE weak (tenant_id uuid NOT NULL, PRIMARY KEY (tenant_id))")
        conn.execute("ALTER TABLE weak ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE weak FORCE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY p ON weak USING (true)")
        found = violations(conn)
        conn.rollback()
    assert any(v.startswith("weak: USING must compare") for v in found)
    assert any(v.startswith("weak: WITH CHECK must compare") for v in found)


async def test_the_application_refuses_a_role_that_bypasses_rls(stack):
    engine = create_app_engine(sqlalchemy_url(stack.admin_url), pool_size=1, max_overflow=0)
    try:
        with pytest.raises(UnsafeDatabaseRole):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def test_only_an_index_pinned_to_one_tenant_may_skip_tenant_id(stack):
    with psycopg.connect(libpq_dsn(stack.admin_url)) as conn:
        conn.execute("SET ROLE tenantry_owner")
        conn.execute(
            "CREATE INDEX pinned ON chunks (ordinal) WHERE tenant_id = '00000000-0000-0000-0000-000000000001'"
        )
        conn.execute("CREATE INDEX unpinned ON chunks (ordinal) WHERE ordinal > 3")
        found = violations(conn)
        conn.rollback()
    assert "chunks: index unpinned does not lead with tenant_id" in found
    assert not any("pinned does" in v and "unpinned" not in v for v in found)
