"""Usage metering: counters per tenant and day, kept in memory and added to PostgreSQL in batches.

Counters are never dropped: a flush that fails, or is cancelled half-way, keeps what it did not
write for the next one, and when the last flush (at shutdown, bounded) fails or runs out of time, they are written to a file under `home/usage-spill/`. Every API
process adds such files to the database when it starts and after each flush, claiming a file by
renaming it first, so that two processes never count the same file twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import psutil
import structlog
from sqlalchemy import text

from tenantry.db.availability import database_unavailable
from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.runtime.stopping import STOP_SECONDS

log = structlog.get_logger("tenantry.usage")

UPSERT = text(
    "INSERT INTO usage_daily (tenant_id, day, metric, value) VALUES (:tenant_id, :day, :metric, :value) "
    "ON CONFLICT (tenant_id, day, metric) DO UPDATE SET value = usage_daily.value + EXCLUDED.value"
)
Key = tuple[uuid.UUID, date, str]


class UsageMeter:
    def __init__(self, spill_dir: Path | None = None) -> None:
        self._pending: Counter[Key] = Counter()
        self.spill_dir = spill_dir
        # A flush's counts are out of `_pending` until written: a usage report that flushed
        # while another flush was still writing would read without them, so flushes take turns.
        self._flushing = asyncio.Lock()

    def add(self, tenant_id: uuid.UUID, metric: str, amount: int = 1) -> None:
        self._pending[(tenant_id, utcnow().date(), metric)] += amount

    async def flush(self, db: Database, *, tenant_id: uuid.UUID | None = None) -> int:
        """Write what was counted (for one tenant, or all); on failure the counts are kept."""
        async with self._flushing:
            return await self._flush(db, tenant_id)

    async def _flush(self, db: Database, tenant_id: uuid.UUID | None) -> int:
        if tenant_id is None:
            pending, self._pending = self._pending, Counter()
        else:
            pending = Counter({k: v for k, v in self._pending.items() if k[0] == tenant_id})
            for key in pending:
                del self._pending[key]
        unwritten = Counter(pending)
        try:
            await _write(db, unwritten)
        finally:  # cancelled half-way too (a shutdown): what was not written is kept, to spill
            self._pending.update(unwritten)
        return sum(pending.values())

    async def run(self, db: Database, interval: float) -> None:
        await self.recover(db)
        while True:
            await asyncio.sleep(interval)
            await self.flush(db)
            if not self._pending:
                await self.recover(db)

    async def close(self, db: Database, seconds: float = STOP_SECONDS) -> None:
        """The last flush, at shutdown, within `seconds`; what it cannot write is spilled."""
        try:
            await asyncio.wait_for(self.flush(db), seconds)
        except TimeoutError:
            log.warning("usage flush at shutdown did not finish in time", seconds=seconds)
        finally:
            self.spill()

    def spill(self) -> Path | None:
        """Counts still unwritten go to a file, to be added by the next process that starts."""
        if not self._pending or self.spill_dir is None:
            return None
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"{uuid.uuid4().hex}.json"
        _save(path, self._pending)
        log.warning("usage counters spilled to a file", path=str(path), counts=len(self._pending))
        self._pending = Counter()
        return path

    async def recover(self, db: Database) -> int:
        """Add spilled counts to the database; a file is removed only once all of it is written."""
        if self.spill_dir is None or not self.spill_dir.is_dir():
            return 0
        added = 0
        for path in sorted(self.spill_dir.iterdir()):
            claimed = _claim(path)
            if claimed is None:
                continue
            left = _load(claimed)
            counts = sum(left.values())
            await _write(db, left)
            if left:  # the database went away meanwhile: give the rest back for later
                _save(claimed, left)
                os.replace(claimed, self.spill_dir / f"{uuid.uuid4().hex}.json")
                return added
            claimed.unlink(missing_ok=True)
            added += counts
        if added:
            log.info("spilled usage counters added", counts=added)
        return added


async def _write(db: Database, pending: Counter[Key]) -> None:
    """One transaction per tenant; each tenant's counts leave `pending` once written, so what
    is left there, after a failure or a cancellation, is exactly what was not."""
    by_tenant: dict[uuid.UUID, list[dict]] = {}
    for (tenant_id, day, metric), value in pending.items():
        by_tenant.setdefault(tenant_id, []).append(
            {"tenant_id": tenant_id, "day": day, "metric": metric, "value": value}
        )
    for tenant_id, rows in by_tenant.items():
        # Rows in one order everywhere: two flushes (two processes) never lock them crosswise.
        rows.sort(key=lambda row: (row["day"], row["metric"]))
        try:
            async with db.tenant(tenant_id) as session:
                await session.execute(UPSERT, rows)
        except Exception as error:  # kept for the next flush, or spilled at shutdown
            if database_unavailable(error):
                log.warning("usage flush failed: database unavailable", tenant_id=str(tenant_id))
            else:
                log.exception("usage flush failed", tenant_id=str(tenant_id))
            continue
        for row in rows:
            del pending[(row["tenant_id"], row["day"], row["metric"])]


def _claim(path: Path) -> Path | None:
    """Rename a spill file to this process's name; None if another process has it."""
    name = path.name
    if name.endswith(".json"):
        target = path.with_name(f"{name}.claimed-{os.getpid()}")
    elif ".claimed-" in name:  # claimed by a process that died before finishing it
        owner = name.rsplit("-", 1)[-1]
        if not owner.isdigit() or int(owner) == os.getpid() or psutil.pid_exists(int(owner)):
            return None
        target = path.with_name(name.split(".claimed-")[0] + f".claimed-{os.getpid()}")
    else:
        return None
    try:
        os.rename(path, target)
    except OSError:
        return None
    return target


def _save(path: Path, counts: Counter[Key]) -> None:
    rows = [[str(t), d.isoformat(), m, v] for (t, d, m), v in counts.items()]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as file:
        json.dump(rows, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _load(path: Path) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    with contextlib.suppress(OSError, ValueError):
        for tenant, day, metric, value in json.loads(path.read_text()):
            counts[(uuid.UUID(tenant), date.fromisoformat(day), metric)] += int(value)
    return counts
