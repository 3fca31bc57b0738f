"""Indexes for keyset pagination: each list's sort key, then `id`, after the tenant.

A page is `WHERE tenant_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC`;
an index on exactly those columns answers it by a short index scan however deep the page. The
indexes they replace were their prefixes. (Built in the migration's transaction: the migration
runner holds one transaction for all revisions, which CREATE INDEX CONCURRENTLY cannot run in.)

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0009"
down_revision = "0012"
branch_labels = None
depends_on = None

# name, table, columns, the index it replaces
INDEXES = [
    (
        "ix_documents_tenant_id_created_at_id",
        "documents",
        "tenant_id, created_at, id",
        "ix_documents_tenant_id_created_at",
    ),
    ("ix_api_keys_tenant_id_created_at_id", "api_keys", "tenant_id, created_at, id", None),
    (
        "ix_webhook_endpoints_tenant_id_created_at_id",
        "webhook_endpoints",
        "tenant_id, created_at, id",
        None,
    ),
    (
        "ix_webhook_deliveries_tenant_id_endpoint_id_created_at_id",
        "webhook_deliveries",
        "tenant_id, endpoint_id, created_at, id",
        "ix_webhook_deliveries_tenant_id_endpoint_id_created_at",
    ),
]


def upgrade() -> None:
    for name, table, columns, replaced in INDEXES:
        op.create_index(name, table, columns.split(", "))
        if replaced:
            op.drop_index(replaced, table_name=table)


def downgrade() -> None:
    for name, table, columns, replaced in reversed(INDEXES):
        if replaced:
            op.create_index(replaced, table, columns.split(", ")[:-1])
        op.drop_index(name, table_name=table)
