"""Keeping every cell's copy of the tier templates in step with the control plane.

A tenant's effective configuration is read in its cell's database, under its tier's template,
and operators change the templates on the control plane (`tenantry config tier-set`, the admin
API). So every other cell holds a copy of `tier_config_versions`: this relay chore copies, every
sweep, the versions the control plane has and a cell lacks. Versions are append-only (a change or
a rollback is a new version), so a copy is only ever added to, and two workers doing it at once
agree (`ON CONFLICT DO NOTHING`). The copy notifies the cell's configuration listeners, so the
caches of the tenants there reload: a tier change reaches them within one sweep
(`outbox_sweep_seconds`).
"""

from __future__ import annotations

import psycopg
import structlog
from sqlalchemy import and_, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError

from tenantry.config.models import TierConfigVersion
from tenantry.config.service import EVERYONE, notify
from tenantry.db.cells import Cell
from tenantry.db.session import Database

log = structlog.get_logger("tenantry.config")

LATEST = text("SELECT tier, max(version) FROM tier_config_versions GROUP BY tier")
COLUMNS = ("tier", "version", "document", "diff", "author", "created_at")


class SyncCellTiers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self) -> int:
        """How many versions were copied, into every cell together."""
        if self.db.cells is None:
            return 0
        others = (await self.db.cells.registered())[1:]
        if not others:
            return 0
        async with self.db.control() as control:
            latest = dict((await control.execute(LATEST)).all())
        copied = 0
        for cell in others:
            try:
                copied += await self._copy_into(cell, latest)
            except (OSError, SQLAlchemyError, psycopg.Error) as error:
                log.warning("tier templates not copied", cell=cell.name, error=str(error))
        if copied:
            log.info("tier templates copied into the cells", versions=copied)
        return copied

    async def _copy_into(self, cell: Cell, latest: dict[str, int]) -> int:
        there = self.db.pinned(cell)
        async with there.control() as session:
            theirs = dict((await session.execute(LATEST)).all())
        behind = {t: theirs.get(t, 0) for t, v in latest.items() if v > theirs.get(t, 0)}
        if not behind:
            return 0
        async with self.db.control() as control:
            rows = (
                await control.scalars(
                    select(TierConfigVersion).where(
                        or_(
                            *(
                                and_(TierConfigVersion.tier == t, TierConfigVersion.version > since)
                                for t, since in behind.items()
                            )
                        )
                    )
                )
            ).all()
        values = [{column: getattr(row, column) for column in COLUMNS} for row in rows]
        async with there.control() as session:
            await session.execute(insert(TierConfigVersion).values(values).on_conflict_do_nothing())
            await notify(session, EVERYONE)
        return len(values)
