"""Every tenant-owned table is placed for backups: a new one fails here until it is."""

from __future__ import annotations

from tenantry.db.catalog import tenant_tables
from tenantry.ops.tables import AUDIT, DATA, RUNTIME, kind_of


async def test_every_tenant_table_is_classified_once(db):
    async with db.control() as session:
        tables = set(await tenant_tables(session))
    for table in tables:
        kind_of(table)  # raises UnclassifiedTable naming it
    placed = [*DATA, *AUDIT, *RUNTIME]
    assert len(placed) == len(set(placed)), "a table placed twice"
    assert set(placed) == tables, f"placed but not in the database: {set(placed) - tables}"
