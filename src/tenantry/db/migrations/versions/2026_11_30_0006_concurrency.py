"""Concurrency: the audit chain's head in a table of its own, refresh-token lineage for the
rotation grace period, and what each document charged to the daily ingestion quota.

The head moves out of `tenants`: every tenant-owned insert holds a key-share lock on its tenant's
row through its foreign key, so locking that row to advance the chain deadlocked two audited
writes. `audit_heads` is referenced by nothing. The existing heads are copied over, so `verify`
still detects removed tails.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import enable_tenant_rls

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GENESIS = "0" * 64

# Row-level security is forced for the owner too: reach each tenant's rows as that tenant.
SEED_TODAYS_INGESTION = """
DO $$
DECLARE t uuid;
BEGIN
    FOR t IN SELECT id FROM tenants LOOP
        PERFORM set_config('tenantry.tenant_id', t::text, true);
        INSERT INTO usage_daily (tenant_id, day, metric, value)
        SELECT t, (now() AT TIME ZONE 'utc')::date, 'ingestion_bytes', sum(size_bytes)
        FROM documents
        WHERE tenant_id = t AND created_at >= date_trunc('day', now() AT TIME ZONE 'utc') AT TIME ZONE 'utc'
        HAVING count(*) > 0
        ON CONFLICT (tenant_id, day, metric) DO NOTHING;
    END LOOP;
    PERFORM set_config('tenantry.tenant_id', '', true);
END $$
"""


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    op.execute(
        "INSERT INTO audit_heads (tenant_id, seq, hash) "
        "SELECT id, audit_head_seq, audit_head_hash FROM tenants WHERE audit_head_seq > 0"
    )
    enable_tenant_rls("audit_heads", grants="SELECT, INSERT, UPDATE, DELETE")
    op.drop_column("tenants", "audit_head_seq")
    op.drop_column("tenants", "audit_head_hash")

    # The token a refresh token replaced: siblings (two answers to one replayed token) share it.
    op.add_column("refresh_tokens", sa.Column("parent_id", sa.Uuid))
    op.create_index(
        "ix_refresh_tokens_tenant_id_parent_id", "refresh_tokens", ["tenant_id", "parent_id"]
    )

    # Set once the text is extracted and charged to the day's ingestion quota.
    op.add_column("documents", sa.Column("extracted_bytes", sa.BigInteger))
    op.execute(SEED_TODAYS_INGESTION)


def downgrade() -> None:
    op.drop_column("documents", "extracted_bytes")
    op.drop_index("ix_refresh_tokens_tenant_id_parent_id", "refresh_tokens")
    op.drop_column("refresh_tokens", "parent_id")
    op.add_column(
        "tenants",
        sa.Column("audit_head_seq", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "tenants",
        sa.Column("audit_head_hash", sa.Text, nullable=False, server_default=GENESIS),
    )
    op.execute(
        """
        DO $$
        DECLARE t uuid;
        BEGIN
            FOR t IN SELECT id FROM tenants LOOP
                PERFORM set_config('tenantry.tenant_id', t::text, true);
                UPDATE tenants SET audit_head_seq = h.seq, audit_head_hash = h.hash
                FROM audit_heads h WHERE h.tenant_id = t AND tenants.id = t;
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    op.drop_table("audit_heads")
