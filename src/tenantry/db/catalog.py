"""What the database itself says about tenant-owned tables (not what the models claim)."""

from __future__ import annotations

from graphlib import TopologicalSorter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

TENANT_TABLES = text(
    """
    SELECT c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    """
)

FOREIGN_KEYS = text(
    """
    SELECT child.relname AS child, parent.relname AS parent
    FROM pg_constraint k
    JOIN pg_class child ON child.oid = k.conrelid
    JOIN pg_class parent ON parent.oid = k.confrelid
    JOIN pg_namespace n ON n.oid = child.relnamespace
    WHERE k.contype = 'f' AND n.nspname = 'public' AND child.oid <> parent.oid
    """
)


async def tenant_tables(session: AsyncSession) -> list[str]:
    """Every table with a `tenant_id` column, referencing tables before the tables they reference."""
    tables = set((await session.scalars(TENANT_TABLES)).all())
    referenced_by: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in (await session.execute(FOREIGN_KEYS)).all():
        if child in tables and parent in tables:
            referenced_by[parent].add(child)
    # A table comes after everything that references it, so deletes never trip a foreign key.
    return list(TopologicalSorter(referenced_by).static_order())
