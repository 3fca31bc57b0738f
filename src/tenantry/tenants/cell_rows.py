"""Keeping the cells' copies of the `tenants` row in step with the control plane.

A tenant's transactions in its cell join its `tenants` row there (foreign keys, the request
path's status and tier checks), so a cell holds a copy of the row of every tenant placed in it.
A move writes it; afterwards this relay chore compares every sweep the control plane's rows of
the tenants placed elsewhere with their cells' copies and rewrites a copy that differs, all but
its placement (which only a move switches). A cell's copy is therefore at most one sweep
(`outbox_sweep_seconds`) behind a lifecycle change, such as a suspension. A level-triggered
reconciliation rather than a message per change: nothing to lose, and a cell that was down
catches up on the next sweep.
"""

from __future__ import annotations

import structlog

from tenantry.db.cells import UnknownCell
from tenantry.db.session import Database
from tenantry.ops.move import begun, place_tenant_row

log = structlog.get_logger("tenantry.cells")

PLACED_ELSEWHERE = (
    "SELECT id, cell, md5((to_jsonb(t) - 'cell')::text) FROM tenants t WHERE cell <> %s"
)
COPY_DIGEST = "SELECT md5((to_jsonb(t) - 'cell')::text) FROM tenants t WHERE id = %s"


class SyncCellTenants:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self) -> int:
        cells = self.db.cells
        if cells is None:
            return 0
        async with cells.main.engine.connect() as conn:
            control = (await conn.get_raw_connection()).driver_connection
            placed = await (await control.execute(PLACED_ELSEWHERE, [cells.main.name])).fetchall()
            rewritten = 0
            for tenant_id, name, digest in placed:
                try:
                    cell = await cells.named(name)
                except UnknownCell:
                    continue
                async with begun(cell.engine, tenant_id) as (_, copy):
                    row = await (await copy.execute(COPY_DIGEST, [tenant_id])).fetchone()
                    if row is not None and row[0] == digest:
                        continue
                    await place_tenant_row(
                        control, copy, tenant_id=tenant_id, cell=name, keep_placement=True
                    )
                    rewritten += 1
        if rewritten:
            log.info("tenant rows copied into their cells", tenants=rewritten)
        return rewritten
