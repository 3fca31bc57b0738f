"""The tenants whose configuration gives them dedicated workers, in every cell: each cell reads
the configuration of the tenants placed in it (a silo tenant's lives in its silo cell), as the
outbox relay of that cell does when it picks the tenant's task queue."""

from __future__ import annotations

from sqlalchemy import text

from tenantry.db.session import Database
from tenantry.tenants.cells import list_cells

IN_CELL = "SELECT d_slug, d_own_namespace FROM dedicated_worker_tenants_in(:cell)"
LIVE = "SELECT slug FROM tenants WHERE status IN ('active', 'suspended') ORDER BY slug"


async def dedicated_placements(db: Database) -> dict[str, bool]:
    """Each live tenant with dedicated workers, in every cell, and whether its configuration
    gives it its own Temporal namespace too. A cell that cannot be reached raises: an answer
    missing a cell's tenants would take their workers away."""
    if db.cells is None:  # one database serves every tenant
        async with db.control() as session:
            return dict((await session.execute(text(IN_CELL), {"cell": None})).all())
    async with db.control() as session:
        found = dict((await session.execute(text(IN_CELL), {"cell": db.cells.main.name})).all())
        names = [cell.name for cell in await list_cells(session)]
    for name in names:
        cell = await db.cells.named(name)
        async with db.pinned(cell).control() as session:
            found.update((await session.execute(text(IN_CELL), {"cell": name})).all())
    return found


async def live_slugs(db: Database) -> list[str]:
    """Every live tenant's slug (the control plane knows them all, wherever they are placed)."""
    async with db.control() as session:
        return list((await session.scalars(text(LIVE))).all())
