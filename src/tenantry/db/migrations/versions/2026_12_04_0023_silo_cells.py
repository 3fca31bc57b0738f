"""Silo cells: a cell's kind, the move's decision on dedicated workers, and the tenants of a cell
whose configuration gives them dedicated workers.

- `cells.kind`: `pool` (many tenants, the shared task queue and workers) or `silo` (a tenant's
  own placement: a move into it gives the tenant its own task queue and worker).
- `tenant_moves.dedicated_workers`: what the move set the tenant's `features.dedicated_workers`
  to (null until that step ran).
- `dedicated_worker_tenants_in(cell)`: as 0019's `dedicated_worker_tenants()`, for the tenants
  placed in `cell` only (a cell's copy of the `tenants` row of a tenant that left it says where
  it went; its configuration there is gone). A null cell means every tenant.

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cells", sa.Column("kind", sa.Text, nullable=False, server_default=sa.text("'pool'"))
    )
    op.execute("ALTER TABLE cells ADD CONSTRAINT ck_cells_kind CHECK (kind IN ('pool', 'silo'))")
    op.add_column("tenant_moves", sa.Column("dedicated_workers", sa.Boolean, nullable=True))
    # Invoker's rights, like 0019's: each tenant is set in turn, so its configuration is read
    # under its own policy; only slugs leave the function.
    op.execute(
        """
        CREATE FUNCTION dedicated_worker_tenants_in(p_cell text)
        RETURNS TABLE(d_slug text)
        LANGUAGE plpgsql AS $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT id, slug, tier FROM tenants
                     WHERE status IN ('active', 'suspended')
                       AND (p_cell IS NULL OR cell = p_cell)
                     ORDER BY slug
            LOOP
                PERFORM set_config('tenantry.tenant_id', t.id::text, true);
                RETURN QUERY SELECT t.slug WHERE coalesce(
                    (SELECT (c.document -> 'features' ->> 'dedicated_workers')::boolean
                       FROM config_versions c WHERE c.tenant_id = t.id
                      ORDER BY c.version DESC LIMIT 1),
                    (SELECT (v.document -> 'features' ->> 'dedicated_workers')::boolean
                       FROM tier_config_versions v WHERE v.tier = t.tier
                      ORDER BY v.version DESC LIMIT 1),
                    false);
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION dedicated_worker_tenants_in(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION dedicated_worker_tenants_in(text) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION dedicated_worker_tenants_in(text)")
    op.drop_column("tenant_moves", "dedicated_workers")
    op.drop_column("cells", "kind")
