"""The outbox's delay counts only what the relay should be delivering now.

`tenant_gauges()` took the oldest undelivered outbox row of every tenant, so a suspended tenant's
held rows, or rows queued behind a tenant's workflows_in_flight limit (both waiting by design),
made the platform's outbox look late: `/health/detailed` degraded and `OutboxDelayHigh`-style
alerts fired for no fault. The pending count still counts every row.

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-03
"""

from alembic import op

revision = "0020"
down_revision = "0016"
branch_labels = None
depends_on = None

# 0015's function as it was: what a downgrade puts back.
DOWNGRADE = """
        CREATE OR REPLACE FUNCTION tenant_gauges()
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

# The outbox delay rows of 0015's function, and this revision's.
OLD_DELAY = """
                RETURN QUERY SELECT t, 'outbox_oldest_seconds'::text, ''::text,
                        extract(epoch FROM clock_timestamp() - min(o.created_at))::float8
                    FROM outbox o WHERE o.tenant_id = t AND o.delivered_at IS NULL
                    HAVING count(*) > 0;"""
NEW_DELAY = """
                -- The relay's delay: rows it should be delivering now. A suspended tenant's rows
                -- and rows queued behind its workflows_in_flight limit wait by design.
                RETURN QUERY SELECT t, 'outbox_oldest_seconds'::text, ''::text,
                        extract(epoch FROM clock_timestamp() - min(o.created_at))::float8
                    FROM outbox o JOIN tenants tt ON tt.id = o.tenant_id
                    WHERE o.tenant_id = t AND o.delivered_at IS NULL AND o.waiting_for IS NULL
                      AND tt.status = 'active'
                    HAVING count(*) > 0;"""
UPGRADE = DOWNGRADE.replace(OLD_DELAY, NEW_DELAY)
assert UPGRADE != DOWNGRADE


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
