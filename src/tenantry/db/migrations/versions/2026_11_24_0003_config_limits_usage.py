"""Configuration versions, tier templates, operator limit overrides and daily usage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("limit_overrides", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )

    op.create_table(
        "tier_config_versions",
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("diff", JSONB, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tier", "version"),
    )
    op.execute(f"GRANT SELECT, INSERT ON tier_config_versions TO {APP_ROLE}")

    op.create_table(
        "config_versions",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("diff", JSONB, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "version"),
    )
    enable_tenant_rls("config_versions", grants="SELECT, INSERT, DELETE")

    op.create_table(
        "usage_daily",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", "metric"),
    )
    enable_tenant_rls("usage_daily")


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("config_versions")
    op.drop_table("tier_config_versions")
    op.drop_column("tenants", "limit_overrides")
