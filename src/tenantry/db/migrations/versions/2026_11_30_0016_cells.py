"""Cells: the databases tenants are placed in, online moves between them, and the guard every
tenant transaction passes on entering a cell.

- `cells` (control plane): a cell's name and where it is, either a database on the platform's
  own server or a URL read from an environment variable (no password lands in the table). The
  control-plane database itself is the default cell and needs no row.
- `tenant_moves` (control plane): a move of one tenant from a cell to another and its progress.
- `tenantry_enter(tenant, here, writes)`: refuses a transaction that reached a cell the tenant is
  not placed in (SQLSTATE TY001, the cell it is placed in as the detail), and while a move holds
  the tenant's writes (an exclusive advisory lock on the tenant) turns the transaction read-only.
- `tenantry_hold_key(tenant)`: that advisory lock's key.
- `audit_purge_moved(tenant, here)`: the owner's alone, removes the audit chain a tenant left
  behind in a cell it moved out of.

Revision ID: 0016
Revises: 0017
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0016"
down_revision = "0017"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

HOLD_KEY = """
CREATE FUNCTION tenantry_hold_key(tenant uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
    SELECT ('x' || left(replace(tenant::text, '-', ''), 16))::bit(64)::bigint
$$
"""

ENTER = """
CREATE FUNCTION tenantry_enter(tenant uuid, here text, writes boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE placed text;
BEGIN
    SELECT t.cell INTO placed FROM tenants t WHERE t.id = tenant;
    IF placed IS NOT NULL AND placed <> here THEN
        RAISE EXCEPTION 'tenant % is placed in cell %, not %', tenant, placed, here
            USING ERRCODE = 'TY001', DETAIL = placed;
    END IF;
    IF writes AND NOT pg_try_advisory_xact_lock_shared(tenantry_hold_key(tenant)) THEN
        -- A move holds the tenant's writes: reads go on, a write fails as read-only.
        PERFORM set_config('transaction_read_only', 'on', true);
        RETURN 'held';
    END IF;
    RETURN 'ok';
END $$
"""

PURGE_MOVED = """
CREATE FUNCTION audit_purge_moved(of_tenant uuid, here text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE removed bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = of_tenant AND cell <> here) THEN
        RAISE EXCEPTION 'only the audit log of a tenant placed in another cell is purged'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('tenantry.tenant_id', of_tenant::text, true);
    PERFORM set_config('tenantry.purging', of_tenant::text, true);
    DELETE FROM audit_events WHERE tenant_id = of_tenant;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM audit_heads WHERE tenant_id = of_tenant;
    PERFORM set_config('tenantry.purging', '', true);
    PERFORM set_config('tenantry.tenant_id', '', true);
    RETURN removed;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "cells",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("database", sa.Text),
        sa.Column("url_env", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("(database IS NULL) <> (url_env IS NULL)", name="one_location"),
    )
    op.execute(f"GRANT SELECT, INSERT ON cells TO {APP_ROLE}")
    op.create_table(
        "tenant_moves",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("progress", sa.dialects.postgresql.JSONB, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("copy_ms", sa.Integer),
        sa.Column("hold_ms", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_tenant_moves_tenant_created_at", "tenant_moves", ["tenant", "created_at"])
    # One move of a tenant at a time.
    op.create_index(
        "ux_tenant_moves_running",
        "tenant_moves",
        ["tenant"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenant_moves TO {APP_ROLE}")
    op.execute(HOLD_KEY)
    op.execute(ENTER)
    op.execute(PURGE_MOVED)
    op.execute("REVOKE ALL ON FUNCTION audit_purge_moved(uuid, text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_purge_moved(uuid, text)")
    op.execute("DROP FUNCTION tenantry_enter(uuid, text, boolean)")
    op.execute("DROP FUNCTION tenantry_hold_key(uuid)")
    op.drop_table("tenant_moves")
    op.drop_table("cells")
