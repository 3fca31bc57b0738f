"""Identity: operators, tenant users, refresh tokens, API keys, LDAP settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.migrations.rls import APP_ROLE, enable_tenant_rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS),
        sa.UniqueConstraint("email"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON operators TO {APP_ROLE}")
    op.add_column(
        "operator_tokens", sa.Column("operator_id", sa.Uuid, sa.ForeignKey("operators.id"))
    )

    op.create_table(
        "users",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("auth_source", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_login_at", TS),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "email"),
        sa.CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name="role_known"),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
        sa.CheckConstraint("auth_source IN ('local', 'ldap')", name="auth_source_known"),
    )
    enable_tenant_rls("users")

    op.create_table(
        "refresh_tokens",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("family_id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        sa.Column("revoked_at", TS),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "token_hash"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_refresh_tokens_tenant_id_family_id", "refresh_tokens", ["tenant_id", "family_id"]
    )
    op.create_index(
        "ix_refresh_tokens_tenant_id_user_id", "refresh_tokens", ["tenant_id", "user_id"]
    )
    enable_tenant_rls("refresh_tokens")

    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lookup", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("last_used_at", TS),
        sa.Column("revoked_at", TS),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "lookup"),
    )
    enable_tenant_rls("api_keys")

    op.create_table(
        "ldap_configs",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("server_url", sa.Text, nullable=False),
        sa.Column("base_dn", sa.Text, nullable=False),
        sa.Column("bind_template", sa.Text, nullable=False),
        sa.Column("group_role_map", JSONB, nullable=False),
        sa.Column("default_role", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    enable_tenant_rls("ldap_configs")


def downgrade() -> None:
    for table in ("ldap_configs", "api_keys", "refresh_tokens", "users"):
        op.drop_table(table)
    op.drop_column("operator_tokens", "operator_id")
    op.drop_table("operators")
