"""Backup schedules and retention (seed 003's table) per tier, and pruning by them.

| cadence | when            | kept for  |
| hourly  | every hour      | 24 hours  |
| daily   | 00:00 UTC       | 30 days   |
| weekly  | Sunday 00:00    | 12 weeks  |
| monthly | the 1st, 00:00  | 12 months |

Which cadences a tier gets is our decision (the seed has one table for one installation):
enterprise all four, standard daily and weekly, free weekly. Manual backups are the operator's
and kept until deleted; a restore's safety backup is kept like a daily one. Pruning never
removes a tenant's newest finished backup, whatever its age.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.ops.models import Backup
from tenantry.ops.store import BackupStore
from tenantry.tenants import service as tenants

KEEP = {
    "hourly": timedelta(hours=24),
    "daily": timedelta(days=30),
    "weekly": timedelta(weeks=12),
    "monthly": timedelta(days=365),
}
CRON = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
}
TIER_CADENCES = {
    "enterprise": ("hourly", "daily", "weekly", "monthly"),
    "standard": ("daily", "weekly"),
    "free": ("weekly",),
}


@dataclass(frozen=True)
class Kept:
    """What the rule needs of a backup."""

    id: Any
    created_at: datetime
    kind: str
    cadence: str | None
    status: str


def expired(backups: Sequence[Kept], *, now: datetime) -> list[Kept]:
    """The backups the retention no longer keeps (a pure function: the rule, tested alone)."""
    done = [b for b in backups if b.status == "done"]
    newest = max(done, key=lambda b: b.created_at) if done else None
    out = []
    for backup in backups:
        if backup is newest or backup.status in ("queued", "running", "pruned"):
            continue
        if (
            backup.status == "failed"
            or (backup.kind == "scheduled" and now - backup.created_at > KEEP[backup.cadence])
            or (backup.kind == "safety" and now - backup.created_at > KEEP["daily"])
        ):
            out.append(backup)
    return out


async def prune(
    db: Database, store: BackupStore, *, slug: str, dry_run: bool = False
) -> dict[str, Any]:
    """Delete the archives of the tenant's expired backups and mark their records `pruned`."""
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
        rows = (await session.scalars(select(Backup).where(Backup.tenant == tenant.id))).all()
        due = expired(
            [Kept(b.id, b.created_at, b.kind, b.cadence, b.status) for b in rows], now=utcnow()
        )
    pruned = []
    for item in due:
        if dry_run:
            pruned.append(str(item.id))
            continue
        async with db.control() as session:
            backup = await session.get(Backup, item.id, with_for_update=True)
            if backup.status == "done":
                # The record says `pruned` only once the archive is gone; a missing one is gone.
                with contextlib.suppress(FileNotFoundError):
                    await store.delete(backup.archive)
            backup.status, backup.pruned_at = "pruned", utcnow()
        pruned.append(str(item.id))
    return {"tenant": slug, "pruned": pruned, "dry_run": dry_run, "kept": len(rows) - len(due)}
