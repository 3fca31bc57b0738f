"""Observability: `tenant_gauges()`, the per-tenant counts a metrics scrape publishes (incidents and
documents by status, live login sessions, workflows holding or waiting for a slot, the outbox's
backlog), read tenant by tenant under each tenant's own policy; and `slo_hourly`, each tenant's
requests, 5xx answers and latency histogram per hour, from which the app reports its SLOs.

Revision ID: 0015
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slo_hourly",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        # requests, errors (5xx), or le:<i>: answers without a 5xx in latency bucket i
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "hour", "name"),
    )
    enable_tenant_rls("slo_hourly", grants="SELECT, INSERT, UPDATE, DELETE")
    # Invoker's rights, like outbox_due_tenants(): each tenant is set in turn, so every row is
    # still read under its tenant's policy; only counts leave the function.
    op.execute(
        """
        CREATE FUNCTION tenant_gauges()
        RETURNS TABLE(g_tenant uuid, g_name text, g_label text, g_value double precision)
        LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
            FOR t IN SELECT id FROM tenants WHERE status IN ('active', 'suspended') ORDER BY id
            LOOP
                PERFORM set_config('tenantry.tenant_id', t::text, true);
                RETURN QUERY SELECT t, 'incidents'::text, i.status, count(*)::float8
                    FROM incidents i WHERE i.tenant_id = t GROUP BY i.status;
                RETURN QUERY SELECT t, 'documents'::text, d.status, count(*)::float8
                    FROM documents d WHERE d.tenant_id = t GROUP BY d.status;
                RETURN QUERY SELECT t, 'active_sessions'::text, ''::text,
                        count(DISTINCT r.family_id)::float8
                    FROM refresh_tokens r
                    WHERE r.tenant_id = t AND r.revoked_at IS NULL AND r.used_at IS NULL
                      AND r.expires_at > clock_timestamp();
                RETURN QUERY SELECT t, 'workflows_in_flight'::text, ''::text, count(*)::float8
                    FROM workflow_slots w WHERE w.tenant_id = t;
                RETURN QUERY SELECT t, 'outbox'::text,
                        CASE WHEN o.waiting_for IS NULL THEN 'due' ELSE 'queued' END,
                        count(*)::float8
                    FROM outbox o WHERE o.tenant_id = t AND o.delivered_at IS NULL
                    GROUP BY 3;
                RETURN QUERY SELECT t, 'outbox_oldest_seconds'::text, ''::text,
                        extract(epoch FROM clock_timestamp() - min(o.created_at))::float8
                    FROM outbox o WHERE o.tenant_id = t AND o.delivered_at IS NULL
                    HAVING count(*) > 0;
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION tenant_gauges() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_gauges() TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION tenant_gauges()")
    op.drop_table("slo_hourly")
