"""Copying one tenant between cells, row for row with its ids, as the application role (so RLS
bounds every statement to the tenant).

`sync` makes the target's rows of the tenant equal to a snapshot of the source's: it compares a
hash of every row on both sides by primary key, upserts what is new or changed (tables in
foreign-key order, parents first) and deletes what the source no longer has (children first).
Run once into an empty target it is the copy; run again under the write hold it carries over
only what changed since, which keeps the hold short. The audit chain is inserted in its own
order, so the target's chain trigger rebuilds the head as the source had it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tenantry.db.catalog import tenant_tables
from tenantry.db.session import SET_TENANT, roll_back_after
from tenantry.ops.tables import TableInfo, table_info

BATCH_ROWS = 500
# Maintained by the chain's trigger as the events are inserted; the application cannot write it.
DERIVED = frozenset({"audit_heads"})
ORDER = {"audit_events": ("seq",), "outbox": ("seq",)}
# Identity columns (the outbox's delivery order) take the target's own numbers: copying the
# source's would collide with what the target's sequence hands out to other tenants.
IDENTITY = (
    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attidentity = 'a' "
    "AND NOT attisdropped"
)
Progress = Callable[[str, int], Awaitable[None]]
TENANT_ROW = "SELECT (to_jsonb(t) - 'cell')::text FROM tenants t WHERE id = %s"


@asynccontextmanager
async def begun(engine: AsyncEngine, tenant_id: uuid.UUID, *, snapshot: bool = False):
    """A transaction on `engine` that sees `tenant_id` only: (session, driver). `snapshot`: a
    read-only repeatable-read one. Committed when the block ends without an error."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if snapshot else "BEGIN"
        await driver.execute(begin)
        session = AsyncSession(bind=conn)
        try:
            await driver.execute(SET_TENANT, [str(tenant_id)])
            yield session, driver
        except BaseException as error:
            await roll_back_after(driver, error)
            raise
        else:
            await driver.commit()
        finally:
            await session.close()


async def place_tenant_row(
    source: psycopg.AsyncConnection,
    target: psycopg.AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    cell: str,
    keep_placement: bool = False,
) -> None:
    """Copy the control plane's `tenants` row of the tenant into a cell (its rows' foreign keys
    and the request path's joins need it there), saying it is placed in `cell`; with
    `keep_placement`, a copy already there keeps saying where it is placed (a move switches it).

    The copy is locked before the control plane's row is read: two copiers at once then write
    in the order they read, so an older state read first never overwrites a newer one."""
    await target.execute("SELECT 1 FROM tenants WHERE id = %s FOR NO KEY UPDATE", [tenant_id])
    row = await (await source.execute(TENANT_ROW, [tenant_id])).fetchone()
    columns = [
        name
        for (name,) in await (
            await target.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'tenants'::regclass "
                "AND attnum > 0 AND NOT attisdropped AND attname NOT IN ('id', 'cell')"
            )
        ).fetchall()
    ]
    names = ", ".join(f'"{c}"' for c in columns)
    updated = columns if keep_placement else [*columns, "cell"]
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in updated)
    await target.execute(
        f"INSERT INTO tenants (id, cell, {names}) SELECT id, %s, {names} "
        f"FROM jsonb_populate_record(NULL::tenants, %s::jsonb) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}",
        [cell, row[0]],
    )


async def moved_tables(session: AsyncSession) -> list[str]:
    """Every tenant-owned table, parents before children: a move takes the whole tenant."""
    return [t for t in reversed(await tenant_tables(session)) if t not in DERIVED]


async def sync(
    source: tuple[AsyncSession, psycopg.AsyncConnection],
    target: tuple[AsyncSession, psycopg.AsyncConnection],
    *,
    tenant_id: uuid.UUID,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Make the target's rows of the tenant those of the source's snapshot: rows written per
    table (new or changed, and deleted)."""
    session, src = source
    _, dst = target
    tables = await moved_tables(session)
    infos = {table: await table_info(session, table) for table in tables}
    written: dict[str, int] = {}
    gone: dict[str, list[str]] = {}
    for table in tables:
        info = infos[table] = await _without_identity(src, infos[table])
        theirs = await _hashes(src, info, tenant_id)
        ours = await _hashes(dst, info, tenant_id)
        changed = [key for key, digest in theirs.items() if ours.get(key) != digest]
        gone[table] = [key for key in ours if key not in theirs]
        written[table] = 0
        if changed:
            every = len(changed) == len(theirs)
            written[table] = await _copy(src, dst, info, tenant_id, None if every else changed)
        if progress is not None:
            await progress(table, written[table])
    for table in reversed(tables):
        if gone[table]:
            key = _key(infos[table], alias=None)
            cursor = await dst.execute(
                f'DELETE FROM "{table}" WHERE tenant_id = %s AND {key} = ANY(%s)',
                [tenant_id, gone[table]],
            )
            written[table] += cursor.rowcount
    return written


async def _without_identity(driver: psycopg.AsyncConnection, info: TableInfo) -> TableInfo:
    """The table as a move sees it: identity columns are left to the target, like generated."""
    identity = {
        name for (name,) in await (await driver.execute(IDENTITY, [f'"{info.name}"'])).fetchall()
    }
    if not identity:
        return info
    columns = tuple(replace(c, generated=True) if c.name in identity else c for c in info.columns)
    return replace(info, columns=columns)


def _key(info: TableInfo, *, alias: str | None = "t") -> str:
    prefix = f"{alias}." if alias else ""
    return "jsonb_build_array(" + ", ".join(f'{prefix}"{c}"' for c in info.primary_key) + ")::text"


def _generated(info: TableInfo) -> list[str]:
    return [c.name for c in info.columns if c.generated]


async def _hashes(
    driver: psycopg.AsyncConnection, info: TableInfo, tenant_id: uuid.UUID
) -> dict[str, str]:
    cursor = await driver.execute(
        f"SELECT {_key(info)}, md5((to_jsonb(t) - %s::text[])::text) "
        f'FROM "{info.name}" t WHERE tenant_id = %s',
        [_generated(info), tenant_id],
    )
    return dict(await cursor.fetchall())


async def _copy(
    src: psycopg.AsyncConnection,
    dst: psycopg.AsyncConnection,
    info: TableInfo,
    tenant_id: uuid.UUID,
    keys: list[str] | None,
) -> int:
    table = info.name
    order = ", ".join(f'"{c}"' for c in ORDER.get(table, info.primary_key))
    where, params = "tenant_id = %s", [_generated(info), tenant_id]
    if keys is not None:
        where += f" AND {_key(info)} = ANY(%s)"
        params.append(keys)
    query = (
        f'SELECT (to_jsonb(t) - %s::text[])::text FROM "{table}" t WHERE {where} ORDER BY {order}'
    )
    statement = await _upsert(dst, info)
    count, batch = 0, []
    async with src.cursor() as cursor:
        async for (line,) in cursor.stream(query, params):
            batch.append(line)
            if len(batch) == BATCH_ROWS:
                count += await _flush(dst, statement, batch)
                batch = []
    if batch:
        count += await _flush(dst, statement, batch)
    return count


async def _upsert(dst: psycopg.AsyncConnection, info: TableInfo) -> str:
    table, columns = info.name, info.insertable
    names = ", ".join(f'"{c}"' for c in columns)
    keys = ", ".join(f'"{c}"' for c in info.primary_key)
    others = [c for c in columns if c not in info.primary_key]
    can_update = (
        await (
            await dst.execute("SELECT has_table_privilege(%s, 'UPDATE')", [f'"{table}"'])
        ).fetchone()
    )[0]
    if others and can_update:
        sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in others)
        conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    else:
        conflict = f"ON CONFLICT ({keys}) DO NOTHING"
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {names} '
        f'FROM jsonb_populate_recordset(NULL::"{table}", %s::jsonb) {conflict}'
    )


async def _flush(dst: psycopg.AsyncConnection, statement: str, batch: list[str]) -> int:
    cursor = await dst.execute(statement, ["[" + ",".join(batch) + "]"])
    return cursor.rowcount
