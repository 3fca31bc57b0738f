"""Exporting one tenant: every DATA and AUDIT table's rows of it, through RLS as the application
role, in one REPEATABLE READ READ ONLY transaction, so the archive is one consistent snapshot
while the tenant goes on reading and writing (no lock beyond what any reader takes)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.session import SET_TENANT, Database
from tenantry.ops.archive import TableWriter, pack
from tenantry.ops.tables import exported_tables, kind_of, table_info

# The chain is read in its own order; every other table by its primary key.
EXPORT_ORDER = {"audit_events": ("seq",)}
Progress = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class Exported:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str

    @property
    def rows(self) -> int:
        return sum(entry["rows"] for entry in self.manifest["tables"].values())


@asynccontextmanager
async def snapshot(db: Database, tenant_id: uuid.UUID):
    """A read-only repeatable-read transaction that sees `tenant_id` only: (session, driver)."""
    cell = await db.cell_of(tenant_id)
    async with (cell.engine if cell is not None else db.engine).connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            await driver.execute(SET_TENANT, [str(tenant_id)])
            session = AsyncSession(bind=conn)
            try:
                yield session, driver
            finally:
                await session.close()
        finally:
            await driver.rollback()


async def export_tenant(
    db: Database,
    *,
    tenant: dict[str, Any],
    into: Path,
    progress: Progress | None = None,
) -> Exported:
    """Write the tenant's archive to `into`. `tenant`: id, slug, name, tier of the source."""
    tenant_id = uuid.UUID(str(tenant["id"]))
    with tempfile.TemporaryDirectory(prefix="tenantry-export-") as scratch:
        folder = Path(scratch)
        async with snapshot(db, tenant_id) as (session, driver):
            revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
            taken_at = await session.scalar(text("SELECT now()"))
            tables: dict[str, dict[str, Any]] = {}
            for table in await exported_tables(session):
                info = await table_info(session, table)
                writer = TableWriter(table, folder / f"{table}.jsonl.gz")
                generated = [c.name for c in info.columns if c.generated]
                order = ", ".join(f'"{c}"' for c in EXPORT_ORDER.get(table, info.primary_key))
                query = (
                    f'SELECT (to_jsonb(t) - %s::text[])::text FROM "{table}" t '
                    f"WHERE tenant_id = %s ORDER BY {order}"
                )
                async with driver.cursor() as cursor:
                    async for (line,) in cursor.stream(query, [generated, tenant_id]):
                        writer.write(line)
                tables[table] = {"kind": kind_of(table), **writer.close()}
                if progress is not None:
                    await progress(table, writer.rows)
            head = await session.execute(
                text("SELECT seq, hash FROM audit_heads WHERE tenant_id = :t"), {"t": tenant_id}
            )
            head_row = head.first()
        manifest = {
            "format": 1,
            "revision": revision,
            "tenant": {k: str(tenant[k]) for k in ("id", "slug", "name", "tier")},
            "created_at": taken_at.isoformat(),
            "written_at": utcnow().isoformat(),
            "tenantry_version": version("tenantry"),
            "audit_head": {"seq": head_row.seq, "hash": head_row.hash} if head_row else None,
            "tables": tables,
        }
        digest = pack(folder, manifest, into)
    return Exported(into, manifest, digest)
