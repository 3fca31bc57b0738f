"""Durable side effects: the outbox and its relay's helpers, workflow slots, paused workflows,
keyed activity effects, Idempotency-Key records, per-tenant data keys, deletion receipts, and the
incident's episode.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("clock_timestamp()")


def _tenant_column() -> sa.Column:
    return sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False)


def upgrade() -> None:
    _outbox()
    _idempotency()
    _keys_and_receipts()
    op.add_column("incidents", sa.Column("episode", sa.Integer, nullable=False, server_default="1"))
    op.add_column("incidents", sa.Column("pending_action", sa.Text))
    op.create_check_constraint(
        "pending_action_known", "incidents", "pending_action IN ('approve', 'resolve')"
    )
    _functions()


def _outbox() -> None:
    op.create_table(
        "outbox",
        _tenant_column(),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.Text, nullable=False),
        sa.Column("workflow_type", sa.Text),
        sa.Column("signal", sa.Text),
        sa.Column("arg", JSONB),
        sa.Column("counts_in_flight", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("reuse_policy", sa.Text),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("available_at", TS, nullable=False, server_default=NOW),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("waiting_for", sa.Text),
        sa.Column("delivered_at", TS),
        sa.Column("outcome", sa.Text),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.CheckConstraint("kind IN ('start', 'signal', 'cancel')", name="kind_known"),
        sa.CheckConstraint(
            "kind <> 'start' OR workflow_type IS NOT NULL", name="start_names_its_workflow"
        ),
        sa.CheckConstraint("kind <> 'signal' OR signal IS NOT NULL", name="signal_named"),
    )
    # What the relay reads: a tenant's undelivered messages, in order, and per workflow.
    op.create_index(
        "ix_outbox_tenant_id_seq_pending",
        "outbox",
        ["tenant_id", "seq"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_tenant_id_workflow_id_seq_pending",
        "outbox",
        ["tenant_id", "workflow_id", "seq"],
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_index("ix_outbox_tenant_id_delivered_at", "outbox", ["tenant_id", "delivered_at"])
    enable_tenant_rls("outbox", grants="SELECT, INSERT, UPDATE, DELETE")

    for table, column in (("workflow_slots", "taken_at"), ("paused_workflows", "paused_at")):
        op.create_table(
            table,
            _tenant_column(),
            sa.Column("workflow_id", sa.Text, nullable=False),
            sa.Column(column, TS, nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", "workflow_id"),
        )
        enable_tenant_rls(table)

    op.create_table(
        "activity_effects",
        _tenant_column(),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("result", JSONB, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    enable_tenant_rls("activity_effects", grants="SELECT, INSERT, DELETE")

    # A new message, or a freed workflow slot, wakes the relay for that tenant (NOTIFY is sent
    # only if the transaction commits).
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tenantry_outbox', COALESCE(NEW.tenant_id, OLD.tenant_id)::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH ROW EXECUTE FUNCTION outbox_notify()"
    )
    op.execute(
        "CREATE TRIGGER workflow_slots_notify AFTER DELETE ON workflow_slots "
        "FOR EACH ROW EXECUTE FUNCTION outbox_notify()"
    )


def _idempotency_columns() -> list[sa.Column]:
    return [
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("locked_until", TS, nullable=False),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    ]


def _idempotency() -> None:
    op.create_table(
        "idempotency_keys",
        _tenant_column(),
        *_idempotency_columns(),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
        sa.CheckConstraint("status IN ('in_flight', 'done')", name="status_known"),
    )
    op.create_index(
        "ix_idempotency_keys_tenant_id_expires_at", "idempotency_keys", ["tenant_id", "expires_at"]
    )
    enable_tenant_rls("idempotency_keys")
    # Operators act on the control plane: their keys live there, scoped per operator.
    op.create_table(
        "operator_idempotency_keys",
        sa.Column("operator", sa.Text, nullable=False),
        *_idempotency_columns(),
        sa.PrimaryKeyConstraint("operator", "key"),
        sa.CheckConstraint("status IN ('in_flight', 'done')", name="status_known"),
    )
    op.create_index(
        "ix_operator_idempotency_keys_expires_at", "operator_idempotency_keys", ["expires_at"]
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON operator_idempotency_keys TO {APP_ROLE}")


def _keys_and_receipts() -> None:
    op.create_table(
        "tenant_keys",
        _tenant_column(),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    enable_tenant_rls("tenant_keys", grants="SELECT, INSERT, DELETE")
    # The receipt outlives the purge of every tenant-owned table, so it is a control-plane row
    # and names its tenant `tenant`, not `tenant_id` (the mark of a purged, RLS-bound table).
    op.create_table(
        "tenant_deletions",
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("deleted_at", TS, nullable=False),
        sa.Column("audit_head_seq", sa.BigInteger, nullable=False),
        sa.Column("audit_head_hash", sa.Text, nullable=False),
        sa.Column("purged", JSONB, nullable=False),
        sa.Column("key_destroyed", sa.Boolean, nullable=False),
        sa.Column("workflows_terminated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("index_dropped", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("cleanup_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cleanup_error", sa.Text),
        sa.Column("cleanup_after", TS, nullable=False, server_default=NOW),
        sa.Column("cleaned_at", TS),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tenant_deletions TO {APP_ROLE}")


def _functions() -> None:
    # Which live tenants have a due outbox message: each tenant set in turn, so every row is still
    # read under its tenant's policy (invoker's rights; nothing here bypasses RLS).
    op.execute(
        """
        CREATE FUNCTION outbox_due_tenants() RETURNS SETOF uuid LANGUAGE plpgsql AS $$
        DECLARE t uuid;
        BEGIN
            FOR t IN SELECT id FROM tenants WHERE status = 'active' ORDER BY id LOOP
                PERFORM set_config('tenantry.tenant_id', t::text, true);
                IF EXISTS (SELECT 1 FROM outbox WHERE tenant_id = t AND delivered_at IS NULL
                           AND available_at <= clock_timestamp()) THEN
                    RETURN NEXT t;
                END IF;
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    # Housekeeping, tenant by tenant in the same way: delivered messages and old effects after
    # `keep`, Idempotency-Key records once expired.
    op.execute(
        """
        CREATE FUNCTION tenantry_prune(keep interval) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE t uuid; n bigint := 0; c bigint;
        BEGIN
            FOR t IN SELECT id FROM tenants WHERE status IN ('active', 'suspended') LOOP
                PERFORM set_config('tenantry.tenant_id', t::text, true);
                DELETE FROM outbox WHERE tenant_id = t AND delivered_at < clock_timestamp() - keep;
                GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
                DELETE FROM activity_effects
                WHERE tenant_id = t AND created_at < clock_timestamp() - keep;
                GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
                DELETE FROM idempotency_keys WHERE tenant_id = t AND expires_at < clock_timestamp();
                GET DIAGNOSTICS c = ROW_COUNT; n := n + c;
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
            DELETE FROM operator_idempotency_keys WHERE expires_at < clock_timestamp();
            GET DIAGNOSTICS c = ROW_COUNT;
            RETURN n + c;
        END $$
        """
    )
    for function in ("outbox_due_tenants()", "tenantry_prune(interval)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION tenantry_prune(interval)")
    op.execute("DROP FUNCTION outbox_due_tenants()")
    op.drop_constraint("ck_incidents_pending_action_known", "incidents")
    op.drop_column("incidents", "pending_action")
    op.drop_column("incidents", "episode")
    for table in (
        "tenant_deletions",
        "tenant_keys",
        "operator_idempotency_keys",
        "idempotency_keys",
        "activity_effects",
        "paused_workflows",
        "workflow_slots",
        "outbox",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION outbox_notify()")
