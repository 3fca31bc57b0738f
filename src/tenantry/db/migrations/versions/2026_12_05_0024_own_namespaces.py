"""Own namespaces: a move may ask to give the tenant its own Temporal namespace
(`tenant_moves.namespace_asked`, and what it set: `tenant_moves.own_namespace`), and
`dedicated_worker_tenants_in(cell)` also says, for each tenant with dedicated
workers, whether its configuration gives it its own Temporal namespace
(`features.own_namespace`), read like `dedicated_workers` (the tenant's latest version, else its
tier's, else off).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FEATURE = """coalesce(
                    (SELECT (c.document -> 'features' ->> '{name}')::boolean
                       FROM config_versions c WHERE c.tenant_id = t.id
                      ORDER BY c.version DESC LIMIT 1),
                    (SELECT (v.document -> 'features' ->> '{name}')::boolean
                       FROM tier_config_versions v WHERE v.tier = t.tier
                      ORDER BY v.version DESC LIMIT 1),
                    false)"""


def _function(returns: str, select: str) -> str:
    # Invoker's rights, like 0023's: each tenant is set in turn, so its configuration is read
    # under its own policy; only slugs and flags leave the function.
    return f"""
        CREATE FUNCTION dedicated_worker_tenants_in(p_cell text)
        RETURNS TABLE({returns})
        LANGUAGE plpgsql AS $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT id, slug, tier FROM tenants
                     WHERE status IN ('active', 'suspended')
                       AND (p_cell IS NULL OR cell = p_cell)
                     ORDER BY slug
            LOOP
                PERFORM set_config('tenantry.tenant_id', t.id::text, true);
                RETURN QUERY {select};
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """


def _replace(returns: str, select: str) -> None:
    op.execute("DROP FUNCTION dedicated_worker_tenants_in(text)")
    op.execute(_function(returns, select))
    op.execute("REVOKE ALL ON FUNCTION dedicated_worker_tenants_in(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION dedicated_worker_tenants_in(text) TO {APP_ROLE}")


def upgrade() -> None:
    op.add_column(
        "tenant_moves",
        sa.Column("namespace_asked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("tenant_moves", sa.Column("own_namespace", sa.Boolean, nullable=True))
    _replace(
        "d_slug text, d_own_namespace boolean",
        f"SELECT t.slug, {FEATURE.format(name='own_namespace')} "
        f"WHERE {FEATURE.format(name='dedicated_workers')}",
    )


def downgrade() -> None:
    _replace("d_slug text", f"SELECT t.slug WHERE {FEATURE.format(name='dedicated_workers')}")
    op.drop_column("tenant_moves", "own_namespace")
    op.drop_column("tenant_moves", "namespace_asked")
