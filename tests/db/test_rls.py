"""As `tenantry_app`, the database itself refuses to cross tenants."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tenantry.db.urls import libpq_dsn

SET_TENANT = "SELECT set_config('tenantry.tenant_id', %s, true)"


def tenant_tables(admin_sql) -> list[str]:
    return [
        r[0]
        for r in admin_sql.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        ).fetchall()
    ]


@pytest.fixture
def app_sql(stack):
    with psycopg.connect(libpq_dsn(stack.app_url)) as conn:
        yield conn


@pytest.fixture
async def two_tenants(make_tenant):
    return await make_tenant(), await make_tenant()


def test_the_app_connects_as_an_unprivileged_role(app_sql):
    row = app_sql.execute(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == ("tenantry_app", False, False)


def test_without_a_tenant_every_tenant_table_reads_empty(two_tenants, app_sql, admin_sql):
    tables = tenant_tables(admin_sql)
    assert admin_sql.execute("SELECT count(*) FROM audit_events").fetchone()[0] > 0
    for table in tables:
        assert app_sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_a_tenant_sees_only_its_rows_and_the_setting_ends_with_the_transaction(
    two_tenants, app_sql
):
    a, _ = two_tenants
    app_sql.execute(SET_TENANT, [str(a.id)])
    seen = {r[0] for r in app_sql.execute("SELECT DISTINCT tenant_id FROM audit_events").fetchall()}
    assert seen == {a.id}
    app_sql.commit()
    assert app_sql.execute("SELECT count(*) FROM audit_events").fetchone()[0] == 0


def test_a_write_naming_another_tenant_is_refused(two_tenants, app_sql):
    a, b = two_tenants
    app_sql.execute(SET_TENANT, [str(a.id)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        app_sql.execute(
            "INSERT INTO audit_events (tenant_id, id, seq, occurred_at, actor, action, target, "
            "prev_hash, hash) VALUES (%s, %s, 99, now(), 'x', 'x', 'x', 'x', 'x')",
            [b.id, uuid.uuid4()],
        )
    app_sql.rollback()
    app_sql.execute(SET_TENANT, [str(a.id)])
    # The application may delete no audit event at all (tests/audit/test_rewrites.py).
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        app_sql.execute("DELETE FROM audit_events WHERE tenant_id = %s", [b.id])


def test_turning_row_security_off_does_not_help(two_tenants, app_sql):
    app_sql.execute("SET row_security = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        app_sql.execute("SELECT count(*) FROM audit_events")
    app_sql.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owner"):
        app_sql.execute("ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY")
    app_sql.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_sql.execute("SET ROLE tenantry_owner")


def test_the_audit_log_is_append_only_for_the_app(two_tenants, app_sql):
    a, _ = two_tenants
    app_sql.execute(SET_TENANT, [str(a.id)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_sql.execute("UPDATE audit_events SET actor = 'forged'")
    app_sql.rollback()
    app_sql.execute(SET_TENANT, [str(a.id)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        app_sql.execute("DELETE FROM audit_events")
