"""Incidents with their timeline and per-tenant numbering; webhook endpoints and deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.migrations.rls import enable_tenant_rls

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_counters",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("last_number", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    enable_tenant_rls("incident_counters")

    op.create_table(
        "incidents",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("area", sa.Text),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("reporter", sa.Text, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("proposal", sa.Text),
        sa.Column("confidence", sa.Float),
        sa.Column("sources", JSONB, nullable=False),
        sa.Column("resolution", sa.Text),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolved_at", TS),
        sa.Column("knowledge_document_id", sa.Uuid),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "number"),
        sa.CheckConstraint(
            "severity IN ('low', 'medium', 'high', 'critical')", name="severity_known"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'triaged', 'awaiting_approval', 'resolved', 'closed')",
            name="status_known",
        ),
    )
    op.create_index(
        "ix_incidents_tenant_id_status_created_at",
        "incidents",
        ["tenant_id", "status", "created_at"],
    )
    enable_tenant_rls("incidents")

    op.create_table(
        "incident_events",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "incident_id"],
            ["incidents.tenant_id", "incidents.id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_incident_events_tenant_id_incident_id_at",
        "incident_events",
        ["tenant_id", "incident_id", "at"],
    )
    enable_tenant_rls("incident_events")

    op.create_table(
        "webhook_endpoints",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", ARRAY(sa.Text), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    enable_tenant_rls("webhook_endpoints")

    op.create_table(
        "webhook_deliveries",
        sa.Column("tenant_id", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("endpoint_id", sa.Uuid, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
    )
    op.create_index(
        "ix_webhook_deliveries_tenant_id_endpoint_id_created_at",
        "webhook_deliveries",
        ["tenant_id", "endpoint_id", "created_at"],
    )
    enable_tenant_rls("webhook_deliveries")


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "webhook_endpoints",
        "incident_events",
        "incidents",
        "incident_counters",
    ):
        op.drop_table(table)
