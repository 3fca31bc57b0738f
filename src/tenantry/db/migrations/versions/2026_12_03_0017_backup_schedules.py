"""Backup schedules and restores through the API.

`schedule_syncs`: a tenant whose backup schedules in Temporal are owed a sync (created, changed
with its tier, paused with it, removed with it), written in the transaction of the change; the
relay's chore reconciles them and removes the row (the outbox pattern, in the control plane,
where a deletion's purge does not reach it). `restores.backup` names the backup a restore or
clone was asked from (and `clone_name` a clone's new name); one restore or clone at a time per tenant, and one clone per new slug.

Revision ID: 0017
Revises: 0019
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0017"
down_revision = "0019"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("clock_timestamp()")
BUSY = "status IN ('queued', 'running')"


def upgrade() -> None:
    op.create_table(
        "schedule_syncs",
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("requested_at", TS, nullable=False, server_default=NOW),
        sa.Column("due_at", TS, nullable=False, server_default=NOW),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_schedule_syncs_due_at", "schedule_syncs", ["due_at"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON schedule_syncs TO {APP_ROLE}")

    op.add_column("restores", sa.Column("backup", sa.Uuid, sa.ForeignKey("backups.id")))
    op.add_column("restores", sa.Column("clone_name", sa.Text))
    op.create_index(
        "uq_restores_one_at_a_time", "restores", ["tenant"], unique=True, postgresql_where=BUSY
    )
    op.create_index(
        "uq_restores_clone_slug",
        "restores",
        ["slug"],
        unique=True,
        postgresql_where=f"mode = 'clone' AND {BUSY}",
    )


def downgrade() -> None:
    op.drop_index("uq_restores_clone_slug", "restores")
    op.drop_index("uq_restores_one_at_a_time", "restores")
    op.drop_column("restores", "clone_name")
    op.drop_column("restores", "backup")
    op.drop_table("schedule_syncs")
