"""Backups, restores and clones: control-plane records of each.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrations.rls import APP_ROLE

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("clock_timestamp()")
EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    # Control-plane rows: they name their tenant `tenant`, like deletion receipts, so that a
    # tenant's purge (every table with `tenant_id`) leaves the record of its backups.
    op.create_table(
        "backups",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("cadence", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("archive", sa.Text, nullable=False),
        sa.Column("progress", JSONB, nullable=False, server_default=EMPTY),
        sa.Column("rows", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("manifest_sha256", sa.Text),
        sa.Column("revision", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("pruned_at", TS),
        sa.CheckConstraint("kind IN ('manual', 'scheduled', 'safety')", name="kind_known"),
        sa.CheckConstraint(
            "cadence IN ('hourly', 'daily', 'weekly', 'monthly')", name="cadence_known"
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'pruned')", name="status_known"
        ),
        sa.UniqueConstraint("archive"),
    )
    op.create_index("ix_backups_tenant_created_at", "backups", ["tenant", "created_at"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON backups TO {APP_ROLE}")

    op.create_table(
        "restores",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("slug", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("archive", sa.Text, nullable=False),
        sa.Column("source_slug", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False, server_default="queued"),
        sa.Column("progress", JSONB, nullable=False, server_default=EMPTY),
        sa.Column("safety_backup", sa.Uuid, sa.ForeignKey("backups.id")),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=NOW),
        sa.Column("finished_at", TS),
        sa.CheckConstraint("mode IN ('replace', 'clone')", name="mode_known"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="status_known"
        ),
    )
    op.create_index("ix_restores_tenant_created_at", "restores", ["tenant", "created_at"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON restores TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("restores")
    op.drop_table("backups")
