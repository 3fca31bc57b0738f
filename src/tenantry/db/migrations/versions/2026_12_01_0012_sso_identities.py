"""Sign-in identities keyed by (source, issuer, subject), who configured a directory's role
mapping, per-tenant OIDC connections and their sign-ins in progress.

LDAP settings saved before this revision have no recorded configurer: their mappings count as
set by an admin (they grant no more than admin) until an owner saves them again. LDAP users
created before it have no identity: an admin links each once (`POST /v1/users/{id}/identities`),
since nothing recorded which directory entry they came from.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.migrations.rls import enable_tenant_rls

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_constraint("auth_source_known", "users", type_="check")
    op.create_check_constraint(
        "auth_source_known", "users", "auth_source IN ('local', 'ldap', 'oidc')"
    )
    op.add_column("ldap_configs", sa.Column("configured_by_kind", sa.Text))
    op.add_column("ldap_configs", sa.Column("configured_by_id", sa.Uuid))
    op.add_column("ldap_configs", sa.Column("configured_by_role", sa.Text))

    op.create_table(
        "user_identities",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("user_id", sa.Uuid, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("linked_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_login_at", TS),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "source", "issuer", "subject"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        sa.CheckConstraint("source IN ('ldap', 'oidc')", name="source_known"),
    )
    op.create_index(
        "ix_user_identities_tenant_id_user_id", "user_identities", ["tenant_id", "user_id"]
    )
    enable_tenant_rls("user_identities")

    op.create_table(
        "oidc_configs",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("client_secret_sealed", sa.LargeBinary, nullable=False),
        sa.Column("allowed_domains", ARRAY(sa.Text), nullable=False),
        sa.Column("role_claim", sa.Text),
        sa.Column("role_map", JSONB, nullable=False),
        sa.Column("default_role", sa.Text),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("configured_by_kind", sa.Text, nullable=False),
        sa.Column("configured_by_id", sa.Uuid),
        sa.Column("configured_by_role", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    enable_tenant_rls("oidc_configs")

    op.create_table(
        "oidc_logins",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("state_hash", sa.Text, nullable=False),
        sa.Column("browser_hash", sa.Text, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "state_hash"),
    )
    op.create_index(
        "ix_oidc_logins_tenant_id_expires_at", "oidc_logins", ["tenant_id", "expires_at"]
    )
    enable_tenant_rls("oidc_logins")


def downgrade() -> None:
    op.drop_table("oidc_logins")
    op.drop_table("oidc_configs")
    op.drop_table("user_identities")
    for column in ("configured_by_role", "configured_by_id", "configured_by_kind"):
        op.drop_column("ldap_configs", column)
    # Row-level security is forced for the owner too: reach each tenant's rows as that tenant.
    op.execute(
        """
        DO $$
        DECLARE t uuid;
        BEGIN
            FOR t IN SELECT id FROM tenants LOOP
                PERFORM set_config('tenantry.tenant_id', t::text, true);
                UPDATE users SET auth_source = 'local' WHERE tenant_id = t AND auth_source = 'oidc';
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    op.drop_constraint("auth_source_known", "users", type_="check")
    op.create_check_constraint("auth_source_known", "users", "auth_source IN ('local', 'ldap')")
