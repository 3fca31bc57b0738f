"""Observability, continued: `tenant_lifecycle_events`, the count of every tenant lifecycle change,
written in the same transaction as the change (so a CLI process that exits at once still counts,
and a change rolled back does not); and `dedicated_worker_tenants()`, the tenants whose
configuration (their own, else their tier's) gives them dedicated workers, whose task queues the
health checks describe beside the shared one.

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0019"
down_revision = "0015"
branch_labels = None
depends_on = None

ACTIONS = ("created", "updated", "suspended", "resumed", "deleted", "purged")


def upgrade() -> None:
    # Control plane: one row per action, no tenant (a purge removes every tenant-owned row, and
    # a counter must never go down).
    op.create_table(
        "tenant_lifecycle_events",
        sa.Column("action", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.execute(
        "INSERT INTO tenant_lifecycle_events (action) VALUES "
        + ", ".join(f"('{action}')" for action in ACTIONS)
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenant_lifecycle_events TO {APP_ROLE}")
    # Invoker's rights, like tenant_gauges(): each tenant is set in turn, so its configuration
    # is read under its own policy; only slugs leave the function.
    op.execute(
        """
        CREATE FUNCTION dedicated_worker_tenants()
        RETURNS TABLE(d_slug text)
        LANGUAGE plpgsql AS $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT id, slug, tier FROM tenants
                     WHERE status IN ('active', 'suspended') ORDER BY slug
            LOOP
                PERFORM set_config('tenantry.tenant_id', t.id::text, true);
                RETURN QUERY SELECT t.slug WHERE coalesce(
                    (SELECT (c.document -> 'features' ->> 'dedicated_workers')::boolean
                       FROM config_versions c WHERE c.tenant_id = t.id
                      ORDER BY c.version DESC LIMIT 1),
                    (SELECT (v.document -> 'features' ->> 'dedicated_workers')::boolean
                       FROM tier_config_versions v WHERE v.tier = t.tier
                      ORDER BY v.version DESC LIMIT 1),
                    false);
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION dedicated_worker_tenants() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION dedicated_worker_tenants() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION dedicated_worker_tenants()")
    op.drop_table("tenant_lifecycle_events")
