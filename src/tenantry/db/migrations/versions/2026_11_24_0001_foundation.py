"""Foundation: the control-plane tenants table, operator tokens and the tenant audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP_ROLE}")
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("cell", sa.Text, nullable=False),
        sa.Column("task_queue", sa.Text, nullable=False),
        sa.Column("cache_prefix", sa.Text, nullable=False),
        sa.Column("log_label", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("suspended_at", TS),
        sa.Column("deleted_at", TS),
        # The head of the tenant's audit chain, kept apart from it so that removing the newest
        # events is detected too.
        sa.Column("audit_head_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("audit_head_hash", sa.Text, nullable=False, server_default="0" * 64),
        sa.UniqueConstraint("slug"),
        sa.CheckConstraint("slug ~ '^[a-z][a-z0-9-]{2,39}$'", name="slug_format"),
        sa.CheckConstraint("tier IN ('free', 'standard', 'enterprise')", name="tier_known"),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'deleting', 'deleted')", name="status_known"
        ),
    )
    op.create_index("ix_tenants_status_tier", "tenants", ["status", "tier"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenants TO {APP_ROLE}")

    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
        sa.UniqueConstraint("token_hash"),
        sa.UniqueConstraint("name"),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON operator_tokens TO {APP_ROLE}")

    op.create_table(
        "audit_events",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "seq"),
    )
    op.create_index(
        "ix_audit_events_tenant_id_occurred_at", "audit_events", ["tenant_id", "occurred_at"]
    )
    # Append-only: no UPDATE grant, and a trigger that refuses edits and deletes except the purge
    # of a tenant being deleted. Tampering by a role that can drop the trigger is caught by the
    # hash chain.
    enable_tenant_rls("audit_events", grants="SELECT, INSERT, DELETE")
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
               AND OLD.tenant_id::text = current_setting('tenantry.purging', true) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("operator_tokens")
    op.drop_table("tenants")
