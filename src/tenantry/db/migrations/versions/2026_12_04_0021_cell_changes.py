"""Lifecycle changes of a tenant placed in another cell than the control plane's.

`cell_changes` (control plane): what a change of a tenant's control-plane row owes its cell (an
audit event, the `resume` of its paused workflows, an outbox message), written in the transaction
of the change, applied in the cell in order and removed (the outbox pattern, across databases).
`cell_changes_applied` (tenant-owned, in every cell): the changes a cell applied, written in the
same transaction as their effects, so a change applied twice (a retry after the cell committed,
two appliers at once) has its effects once.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("clock_timestamp()")


def upgrade() -> None:
    op.create_table(
        "cell_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("effect", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("occurred_at", TS, nullable=False, server_default=NOW),
        sa.Column("due_at", TS, nullable=False, server_default=NOW),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_cell_changes_tenant_id", "cell_changes", ["tenant", "id"])
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON cell_changes TO {APP_ROLE}")

    op.create_table(
        "cell_changes_applied",
        sa.Column(
            "tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), primary_key=True, nullable=False
        ),
        sa.Column("change_id", sa.BigInteger, primary_key=True, nullable=False),
        sa.Column("applied_at", TS, nullable=False, server_default=NOW),
    )
    enable_tenant_rls("cell_changes_applied", grants="SELECT, INSERT, DELETE")


def downgrade() -> None:
    op.drop_table("cell_changes_applied")
    op.drop_table("cell_changes")
