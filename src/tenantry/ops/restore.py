"""Putting an archive's rows into the database, in the caller's one transaction.

`replace` swaps a tenant's DATA rows for the archive's: it holds the tenant's row FOR UPDATE,
which every insert into a tenant-owned table waits on (its foreign key takes KEY SHARE on it),
so the tenant's writes wait for the swap and then see it whole; reads go on from the old rows
until the commit; the workflows of what the swap took away are cancelled in it (through the
outbox). `clone` copies the rows into a new tenant with every id renumbered.

The audit chain is never imported: it is append-only. A restore appends `tenant.restored` to
the live chain; a clone's chain starts with `tenant.created` and `tenant.cloned`, which names the
archive it came from and its source's chain head.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.catalog import tenant_tables
from tenantry.db.session import set_tenant
from tenantry.errors import Conflict
from tenantry.knowledge.service import ingest_unfinished
from tenantry.ops.archive import Archive
from tenantry.ops.remap import IdMap
from tenantry.ops.tables import DATA, table_info
from tenantry.outbox import service as outbox

BATCH_ROWS = 500
Progress = Callable[[str, int], Awaitable[None]]


class SchemaMismatch(Conflict):
    code, title = "archive-schema-mismatch", "Archive from another schema revision"


async def check_revision(session: AsyncSession, archive: Archive) -> str:
    return await check_revision_of(session, revision=archive.manifest["revision"])


async def check_revision_of(session: AsyncSession, *, revision: str | None) -> str:
    """Refuse data from another schema revision, saying which one it needs."""
    current = await session.scalar(text("SELECT version_num FROM alembic_version"))
    wanted = revision
    if wanted != current:
        raise SchemaMismatch(
            f"The archive was taken at schema revision {wanted}; this database is at {current}. "
            f"Restore it into a Tenantry at revision {wanted}, then back it up again there."
        )
    return current


async def data_tables(session: AsyncSession) -> list[str]:
    """DATA tables, each before the tables that reference it (the order to insert in)."""
    return [t for t in reversed(await tenant_tables(session)) if t in DATA]


# Incident numbers are never given twice, even across a restore: an incident's workflow is named
# by its number, and the workflows of incidents numbered after the archive may still run.
LAST_NUMBER = "SELECT last_number FROM incident_counters WHERE tenant_id = :t"
KEEP_NUMBERING = (
    "INSERT INTO incident_counters (tenant_id, last_number) VALUES (:t, :n) "
    "ON CONFLICT (tenant_id) DO UPDATE "
    "SET last_number = greatest(incident_counters.last_number, EXCLUDED.last_number)"
)


async def replace(
    session: AsyncSession,
    *,
    archive: Archive,
    tenant_id: uuid.UUID,
    progress: Progress | None = None,
) -> dict[str, int]:
    await check_revision(session, archive)
    await session.execute(text("SELECT 1 FROM tenants WHERE id = :t FOR UPDATE"), {"t": tenant_id})
    await set_tenant(session, tenant_id)
    numbered = await session.scalar(text(LAST_NUMBER), {"t": tenant_id})
    order = await data_tables(session)
    for table in reversed(order):
        await session.execute(text(f'DELETE FROM "{table}" WHERE tenant_id = :t'), {"t": tenant_id})
    counts = await _insert_all(session, archive, order, None, progress)
    if numbered is not None:
        await session.execute(text(KEEP_NUMBERING), {"t": tenant_id, "n": numbered})
    await withdraw_orphans(session, tenant_id=tenant_id)
    await ingest_unfinished(session, tenant_id=tenant_id)
    return counts


# The tenant's workflows that run (holding a workflows_in_flight slot, or paused while it was
# suspended), and those whose start still waits in the outbox.
RUNNING = (
    "SELECT workflow_id FROM workflow_slots WHERE tenant_id = :t "
    "UNION SELECT workflow_id FROM paused_workflows WHERE tenant_id = :t"
)
WAITING = (
    "SELECT workflow_id FROM outbox WHERE tenant_id = :t AND kind = 'start' "
    "AND delivered_at IS NULL"
)
INCIDENT_KEPT = (
    "SELECT EXISTS (SELECT 1 FROM incidents WHERE tenant_id = :t AND number = :n AND episode = :e)"
)
DOCUMENT_KEPT = "SELECT EXISTS (SELECT 1 FROM documents WHERE tenant_id = :t AND id = :d)"


async def withdraw_orphans(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[str]:
    """Withdraw (or cancel) the workflows of incidents and documents the restore took away
    (made after the archive): left running, they would hold the tenant's workflows_in_flight
    slots for good, waiting for approvals of incidents that no longer exist."""
    slug = await session.scalar(text("SELECT slug FROM tenants WHERE id = :t"), {"t": tenant_id})
    running = set((await session.scalars(text(RUNNING), {"t": tenant_id})).all())
    waiting = set((await session.scalars(text(WAITING), {"t": tenant_id})).all())
    orphans = []
    for workflow_id in sorted(running | waiting):
        if await _still_there(session, tenant_id, workflow_id.removeprefix(f"{slug}/")):
            continue
        how = await outbox.withdraw_or_cancel(session, tenant_id=tenant_id, workflow_id=workflow_id)
        if how != "cancel" and workflow_id in running:  # its start delivered, and pruned since
            await outbox.cancel(session, tenant_id=tenant_id, workflow_id=workflow_id)
        orphans.append(workflow_id)
    return orphans


async def _still_there(session: AsyncSession, tenant_id: uuid.UUID, name: str) -> bool:
    """Whether the object a workflow is named after (`incident/7/2`, `ingest/<id>`) exists;
    a workflow of any other kind is left alone."""
    kind, _, rest = name.partition("/")
    if kind == "incident":
        number, _, episode = rest.partition("/")
        if not number.isdigit() or not (episode or "1").isdigit():
            return True
        found = {"t": tenant_id, "n": int(number), "e": int(episode or 1)}
        return bool(await session.scalar(text(INCIDENT_KEPT), found))
    if kind == "ingest":
        try:
            document = uuid.UUID(rest)
        except ValueError:
            return True
        return bool(await session.scalar(text(DOCUMENT_KEPT), {"t": tenant_id, "d": document}))
    return True


async def clone(
    session: AsyncSession,
    *,
    archive: Archive,
    tenant_id: uuid.UUID,
    progress: Progress | None = None,
) -> tuple[dict[str, int], IdMap]:
    """Copy the archive into the (new, empty) tenant `tenant_id`, every id renumbered."""
    await check_revision(session, archive)
    await set_tenant(session, tenant_id)
    order = await data_tables(session)
    mapping = IdMap(archive.manifest["tenant"]["id"], str(tenant_id))
    for table in order:
        if table not in archive.tables:
            continue
        columns = (await table_info(session, table)).id_columns
        mapping.add(row[c] for row in archive.rows(table) for c in columns if row[c])
    counts = await _insert_all(session, archive, order, mapping, progress)
    await ingest_unfinished(session, tenant_id=tenant_id)
    return counts, mapping


async def _insert_all(
    session: AsyncSession,
    archive: Archive,
    order: list[str],
    mapping: IdMap | None,
    progress: Progress | None,
) -> dict[str, int]:
    inserted: dict[str, int] = {}
    for table in order:
        if table not in archive.tables:
            continue
        info = await table_info(session, table)
        inserted[table] = await _insert_table(session, archive, table, info.insertable, mapping)
        if progress is not None:
            await progress(table, inserted[table])
    return inserted


async def _insert_table(
    session: AsyncSession,
    archive: Archive,
    table: str,
    columns: list[str],
    mapping: IdMap | None,
) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    # jsonb_populate_recordset reads each value with its column type's own input function:
    # vectors, arrays, timestamps and JSON come back exactly as they were exported.
    statement = text(
        f'INSERT INTO "{table}" ({names}) '
        f'SELECT {names} FROM jsonb_populate_recordset(NULL::"{table}", CAST(:rows AS jsonb))'
    )
    count, batch = 0, []
    for line in archive.lines(table):
        batch.append(line if mapping is None else json.dumps(mapping.row(json.loads(line))))
        if len(batch) == BATCH_ROWS:
            count += await _flush(session, statement, batch)
            batch = []
    if batch:
        count += await _flush(session, statement, batch)
    return count


async def _flush(session: AsyncSession, statement, batch: list[str]) -> int:
    result = await session.execute(statement, {"rows": "[" + ",".join(batch) + "]"})
    return result.rowcount


def rows_of(archive: Archive) -> dict[str, Any]:
    return {table: entry["rows"] for table, entry in archive.tables.items()}
