"""Knowledge base: documents, their original content, and chunks with embeddings and full text.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from tenantry.db.migrations.rls import enable_tenant_rls

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
DIMENSION = 384  # multilingual-e5-small; a provider of another size is refused at start


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("source_type", sa.Text, nullable=False),
        sa.Column("filename", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("tags", ARRAY(sa.Text), nullable=False),
        sa.Column("metadata", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "content_hash"),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'ready', 'failed')", name="status_known"
        ),
    )
    op.create_index("ix_documents_tenant_id_created_at", "documents", ["tenant_id", "created_at"])
    enable_tenant_rls("documents")

    op.create_table(
        "document_contents",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("document_id", sa.Uuid, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            ["documents.tenant_id", "documents.id"],
            ondelete="CASCADE",
        ),
    )
    enable_tenant_rls("document_contents")

    op.create_table(
        "chunks",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("document_id", sa.Uuid, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", Vector(DIMENSION)),
        sa.Column("tsv", TSVECTOR, nullable=False),
        sa.Column("tags", ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "document_id", "ordinal"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"],
            ["documents.tenant_id", "documents.id"],
            ondelete="CASCADE",
        ),
    )
    op.execute("CREATE INDEX ix_chunks_tenant_id_tsv ON chunks USING gin (tenant_id, tsv)")
    op.execute("CREATE INDEX ix_chunks_tenant_id_tags ON chunks USING gin (tenant_id, tags)")
    enable_tenant_rls("chunks")


def downgrade() -> None:
    op.drop_table("chunks")
    op.drop_table("document_contents")
    op.drop_table("documents")
