"""Alembic environment: runs on the connection `tenantry.db.migrate` hands over, as the owner role."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("Run migrations with `tenantry migrate`, which connects as the owner role.")

context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
