"""SQL that migrations share to put a table under tenant isolation.

Frozen once released: a migration that needs different SQL gets a new helper, so that old
migrations replay exactly as they first ran.
"""

from alembic import op

APP_ROLE = "tenantry_app"
TENANT_SETTING = "(SELECT nullif(current_setting('tenantry.tenant_id', true), '')::uuid)"


def enable_tenant_rls(table: str, *, grants: str = "SELECT, INSERT, UPDATE, DELETE") -> None:
    """Forced RLS with one policy; the setting is read once per statement (the sub-select)."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING (tenant_id = {TENANT_SETTING}) WITH CHECK (tenant_id = {TENANT_SETTING})"
    )
    op.execute(f"GRANT {grants} ON {table} TO {APP_ROLE}")
