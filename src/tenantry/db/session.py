"""The one way services reach PostgreSQL: a transaction with the tenant set, or a control-plane one.

The tenant is set with `set_config('tenantry.tenant_id', $1, true)`: a bound parameter, local to
the transaction, so a pooled connection never carries a tenant into the next request.

The driver runs in autocommit and we send BEGIN ourselves, pipelined with `set_config`: psycopg's
implicit BEGIN waits for its own answer before anything else is sent, which would cost the tenant
a round trip of its own on every transaction. Transaction-local settings a query needs (a vector
search's planner settings) ride in the same `set_config` statement.

A read-only transaction (`readonly=True`) may run on a read replica (`replica=`), only once the
replica has replayed past the caller's last write (see `db/replica.py`); otherwise, and whenever
the replica cannot be reached, on the primary. It is `READ ONLY` wherever it runs.

Pooled connections are not pinged on checkout (a `SELECT 1` round trip on every transaction):
they are recycled after `POOL_RECYCLE_SECONDS`, and one found dead by the transaction's first
round trip, before anything of the transaction ran, is dropped and replaced once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import structlog
from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from tenantry.db.cells import MISPLACED, Cell, Cells, Misplaced
from tenantry.db.replica import (
    REPLAYED_PAST,
    WAL_POSITION,
    WROTE,
    current_position,
    format_lsn,
    parse_lsn,
)
from tenantry.db.retry import RetryPolicy, is_retryable
from tenantry.errors import Conflict, TenantMoving
from tenantry.tenancy.context import current_tenant

T = TypeVar("T")
TenantSlots = Callable[[uuid.UUID], asyncio.Semaphore | None]
TENANT_SETTING = "tenantry.tenant_id"
SET_TENANT = "SELECT set_config('tenantry.tenant_id', %s, true)"
# Every tenant transaction enters its cell: refused in a cell the tenant is not placed in, and
# read-only while a move holds the tenant's writes (see the 0016 migration).
ENTER = "SELECT tenantry_enter(%s, %s, %s)"
READ_ONLY = "25006"  # read_only_sql_transaction: a write while a move holds the tenant's writes
POOL_RECYCLE_SECONDS = 1800
# After the replica could not be reached, reads stay on the primary this long before trying again.
REPLICA_RETRY_SECONDS = 5.0
log = structlog.get_logger("tenantry.db")

# The application must be subject to RLS: refuse superusers, BYPASSRLS roles and table owners.
UNSAFE_ROLE_CHECK = """
SELECT r.rolsuper OR r.rolbypassrls
       OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""


class TenantElsewhere(Conflict):
    code, title = "tenant-in-another-cell", "Tenant in another cell"


class UnsafeDatabaseRole(RuntimeError):
    pass


class _ReplicaBehind(Exception):
    """The replica has not yet replayed the caller's last write."""


def create_app_engine(url: URL, *, pool_size: int, max_overflow: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping round trip per checkout: see the module's docstring.
        pool_recycle=POOL_RECYCLE_SECONDS,
        # Transactions are opened by `Database` itself (see the module's docstring).
        isolation_level="AUTOCOMMIT",
    )
    event.listen(engine.sync_engine, "connect", _refuse_unsafe_role)
    return engine


def _refuse_unsafe_role(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(UNSAFE_ROLE_CHECK)
    (unsafe,) = cursor.fetchone()
    cursor.close()
    dbapi_connection.rollback()
    if unsafe:
        raise UnsafeDatabaseRole(
            "The application role can bypass row-level security (superuser, BYPASSRLS or table "
            "owner); connect as tenantry_app."
        )


class Database:
    """Hands out transactions; the caller (request, activity, command) owns commit and rollback.

    It also owns the retry policy for transactions that failed with a serialisation failure or
    a deadlock: `retrying()` for the unit of work that re-runs them, `run()` for a body that wants
    an explicitly retried transaction of its own.
    """

    is_retryable = staticmethod(is_retryable)

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tenant_slots: TenantSlots | None = None,
        retry: RetryPolicy | None = None,
        replica: AsyncEngine | None = None,
        cells: Cells | None = None,
    ) -> None:
        self.engine = engine
        # Where each tenant's transactions go; without it, every tenant is in this one database.
        self.cells = cells
        # A streaming standby for read-only transactions (same roles, so the same RLS).
        self.replica = replica
        self._replica_down_until = 0.0
        # Optional cap on how many connections one tenant holds at once (its tier's share).
        self.tenant_slots = tenant_slots
        self.retry = retry or RetryPolicy()

    def pinned(self, cell: Cell | None = None) -> Database:
        """This database's transactions in one cell only (the main one by default), whatever
        the tenant's placement: for work that belongs to a cell, such as its outbox relay."""
        cell = cell or (self.cells.main if self.cells is not None else None)
        return Database(cell.engine if cell else self.engine, retry=self.retry)

    def retrying(self):
        """A fresh tenacity `AsyncRetrying` with this database's policy."""
        return self.retry.retrying()

    async def run(
        self,
        body: Callable[[AsyncSession], Awaitable[T]],
        *,
        tenant_id: uuid.UUID | None = None,
        control: bool = False,
    ) -> T:
        """`body` in a tenant (or control-plane) transaction, run again on a retryable failure."""
        async for attempt in self.retrying():
            with attempt:
                async with self.control() if control else self.tenant(tenant_id) as session:
                    return await body(session)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    @asynccontextmanager
    async def tenant(
        self,
        tenant_id: uuid.UUID | None = None,
        *,
        local_settings: Mapping[str, str] | None = None,
        readonly: bool = False,
    ) -> AsyncIterator[AsyncSession]:
        """A transaction that sees only `tenant_id` (default: the current tenant context).

        `local_settings`: PostgreSQL settings local to the transaction (`SET LOCAL`), set in its
        first round trip; the session's `info["local_settings"]` tells what was set.
        `readonly`: a `READ ONLY` transaction, served by the read replica when there is one and
        it has replayed the caller's writes. Never for a transaction that writes.
        """
        tid = tenant_id or current_tenant().id
        slot = self.tenant_slots(tid) if self.tenant_slots else None
        async with (
            slot or contextlib.nullcontext(),
            self._transaction(tid, local_settings or {}, readonly=readonly) as session,
        ):
            yield session

    async def cell_of(self, tenant_id: uuid.UUID) -> Cell | None:
        """The cell the tenant is placed in (None: this database serves every tenant)."""
        return await self.cells.of_tenant(tenant_id) if self.cells is not None else None

    @asynccontextmanager
    async def control(self) -> AsyncIterator[AsyncSession]:
        """A transaction with no tenant: the control plane's tables only; tenant tables read empty.
        A tenant set in it later (`set_tenant`) must be placed in the main cell."""
        async with self._transaction(None, {}) as session:
            if self.cells is not None:
                session.info["cell"] = self.cells.main.name
            yield session

    async def run_once(
        self, tenant_id: uuid.UUID | None, statement: str, params: Sequence[Any] = ()
    ) -> list[tuple]:
        """One statement in a transaction of its own, in one round trip, on the driver directly:
        the rows as tuples. For the request path's hottest reads.

        No BEGIN nor COMMIT: the tenant's `set_config` and the statement are pipelined before one
        Sync, and PostgreSQL runs everything up to a Sync as one implicit transaction, so the
        setting holds for the statement and ends with it. The statement may run twice (a read, or
        a write that is the same when repeated): a connection found dead is replaced and it is
        retried.
        """
        refused: set[str] = set()
        for attempt in range(1, 4):
            cell = await self._placed(tenant_id, refused) if tenant_id is not None else None
            async with self._connection(cell.engine if cell else None) as (conn, driver):
                entered = None
                try:
                    if tenant_id is None:
                        cursor = await driver.execute(statement, params)
                    else:
                        async with driver.pipeline():
                            await driver.execute(*_set_local({TENANT_SETTING: str(tenant_id)}))
                            if cell is not None:
                                entered = await driver.execute(ENTER, [tenant_id, cell.name, True])
                            cursor = await driver.execute(statement, params)
                except psycopg.OperationalError:
                    if attempt == 1 and _dead(driver):
                        await conn.invalidate()
                        continue
                    raise
                except psycopg.Error as error:
                    await _drop_after_pipeline_error(conn)
                    if cell is not None and error.sqlstate == MISPLACED:
                        self._misplaced(tenant_id, cell, error)
                        refused.add(cell.name)
                        continue
                    if entered is not None and error.sqlstate == READ_ONLY:
                        raise TenantMoving from error
                    raise
                return await cursor.fetchall() if cursor.description is not None else []
        raise TenantMoving

    async def _placed(self, tenant_id: uuid.UUID, refused: set[str]) -> Cell | None:
        """The tenant's cell; one that refused it already means its placement is being switched
        right now (the cells and the control plane are updated one after the other)."""
        cell = await self.cell_of(tenant_id)
        if cell is not None and cell.name in refused:
            raise TenantMoving
        return cell

    def _misplaced(self, tenant_id: uuid.UUID, cell: Cell, error: psycopg.Error) -> None:
        """A stale placement: forget it, so that the next attempt looks it up again."""
        self.cells.forget(tenant_id)
        placed = error.diag.message_detail or ""
        log.info("tenant placed in another cell", tenant=str(tenant_id), cell=placed)

    @asynccontextmanager
    async def _connection(self, engine: AsyncEngine | None = None):
        async with (engine or self.engine).connect() as conn:
            yield conn, (await conn.get_raw_connection()).driver_connection

    @asynccontextmanager
    async def _begun(
        self,
        tenant_id: uuid.UUID | None,
        local_settings: Mapping[str, str],
        *,
        readonly: bool = False,
        engine: AsyncEngine | None = None,
        replayed_past: int = 0,
        cell: str | None = None,
    ):
        """A pooled connection with the transaction begun, in one round trip: (connection,
        driver, held). With `replayed_past`, on a standby that has not replayed that far:
        `_ReplicaBehind`. With `cell`, the tenant enters it: `Misplaced` when it is placed
        elsewhere; `held` when a move holds its writes (the transaction is then read-only)."""
        values = dict(local_settings)
        if tenant_id is not None:
            values[TENANT_SETTING] = str(tenant_id)
        for attempt in (1, 2):
            async with self._connection(engine) as (conn, driver):
                check = entered = None
                try:
                    async with driver.pipeline():
                        await driver.execute("BEGIN READ ONLY" if readonly else "BEGIN")
                        if values:
                            await driver.execute(*_set_local(values))
                        if cell is not None and tenant_id is not None:
                            entered = await driver.execute(ENTER, [tenant_id, cell, not readonly])
                        if replayed_past:
                            check = await driver.execute(REPLAYED_PAST, [format_lsn(replayed_past)])
                except psycopg.OperationalError:
                    # Dead before anything of the transaction ran: safe to start again, once.
                    if attempt == 1 and _dead(driver):
                        await conn.invalidate()
                        continue
                    raise
                except psycopg.Error as error:
                    await _drop_after_pipeline_error(conn)
                    if error.sqlstate != MISPLACED:
                        raise
                    raise Misplaced(tenant_id, cell, error.diag.message_detail or "") from error
                if check is not None and not (await check.fetchone())[0]:
                    await driver.rollback()
                    raise _ReplicaBehind
                held = entered is not None and (await entered.fetchone())[0] == "held"
                yield conn, driver, held
                return

    @asynccontextmanager
    async def _begun_for(
        self, tenant_id: uuid.UUID | None, local_settings: Mapping[str, str], readonly: bool
    ):
        """The transaction begun in the tenant's cell, placement looked up again when the cell
        it was cached in refuses it."""
        async with contextlib.AsyncExitStack() as stack:
            refused: set[str] = set()
            while True:
                cell = await self._placed(tenant_id, refused) if tenant_id is not None else None
                try:
                    begun = await stack.enter_async_context(
                        self._begun_in(cell, tenant_id, local_settings, readonly)
                    )
                    break
                except Misplaced as error:
                    self.cells.forget(error.tenant_id)
                    refused.add(cell.name)
            yield (*begun, cell)

    @asynccontextmanager
    async def _begun_in(
        self,
        cell: Cell | None,
        tenant_id: uuid.UUID | None,
        local_settings: Mapping[str, str],
        readonly: bool,
    ):
        """In the main cell, the replica for a read-only transaction when it may serve it, else
        the primary; in another cell, its one database."""
        name = cell.name if cell is not None else None
        if cell is not None and cell is not self.cells.main:
            async with self._begun(
                tenant_id, local_settings, readonly=readonly, engine=cell.engine, cell=name
            ) as begun:
                yield begun
            return
        async with contextlib.AsyncExitStack() as stack:
            begun = None
            if (
                readonly
                and self.replica is not None
                and time.monotonic() >= self._replica_down_until
            ):
                position = current_position()
                try:
                    begun = await stack.enter_async_context(
                        self._begun(
                            tenant_id,
                            local_settings,
                            readonly=True,
                            engine=self.replica,
                            replayed_past=position.lsn if position else 0,
                            cell=name,
                        )
                    )
                except _ReplicaBehind:
                    pass
                except (
                    psycopg.OperationalError,
                    exc.OperationalError,
                    exc.InterfaceError,
                ) as error:
                    # Nothing of the caller's transaction has run yet: the primary serves it.
                    self._replica_down_until = time.monotonic() + REPLICA_RETRY_SECONDS
                    log.warning(
                        "read replica unreachable; reading from the primary", error=str(error)
                    )
            if begun is None:
                begun = await stack.enter_async_context(
                    self._begun(tenant_id, local_settings, readonly=readonly, cell=name)
                )
            yield begun

    @asynccontextmanager
    async def _transaction(
        self,
        tenant_id: uuid.UUID | None,
        local_settings: Mapping[str, str],
        *,
        readonly: bool = False,
    ) -> AsyncIterator[AsyncSession]:
        begun = self._begun_for(tenant_id, local_settings, readonly)
        async with begun as (conn, driver, held, cell):
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            session.info["local_settings"] = dict(local_settings)
            if cell is not None:  # where a tenant's transaction landed (see `tenants/cell_changes`)
                session.info["tenant_cell"] = cell
            try:
                yield session
                await session.flush()
            except BaseException as error:
                await roll_back_after(driver, error)
                if held and _read_only_refusal(error):
                    raise TenantMoving from error
                raise
            else:
                await self._commit(driver, readonly)
            finally:
                await session.close()

    async def _commit(self, driver: psycopg.AsyncConnection, readonly: bool) -> None:
        position = current_position()
        if readonly or self.replica is None or position is None:
            await driver.commit()
            return
        # With a replica, a write notes where the primary's WAL is once it has committed, in the
        # same round trip as the COMMIT, so that this caller's next reads wait for it.
        async with driver.pipeline():
            wrote = await driver.execute(WROTE)
            await driver.execute("COMMIT")
            where = await driver.execute(WAL_POSITION)
        if (await wrote.fetchone())[0]:
            position.advance(parse_lsn((await where.fetchone())[0]))

    async def dispose(self) -> None:
        if self.cells is not None:
            await self.cells.dispose()
        await self.engine.dispose()


def _set_local(values: Mapping[str, str]) -> tuple[str, list[str]]:
    """One statement setting every value for the current transaction only (`SET LOCAL`)."""
    calls = ", ".join("set_config(%s, %s, true)" for _ in values)
    return f"SELECT {calls}", [part for item in values.items() for part in item]


async def roll_back_after(driver: psycopg.AsyncConnection, error: BaseException) -> None:
    """Roll back after `error`. A cancellation in the middle of a query closes the connection
    (psycopg cannot tell where the protocol stood), so the rollback then fails; that failure must
    not replace the cancellation, or the cancelled task would raise an ordinary database error,
    and a loop that retries those (the relay, the usage meter) would never stop."""
    try:
        await driver.rollback()
    except Exception:
        if isinstance(error, Exception):
            raise
        log.debug("no rollback after cancellation: the connection is closed", exc_info=True)


def _read_only_refusal(error: BaseException) -> bool:
    """A write refused because the transaction is read-only (a move holds the tenant's writes)."""
    cause = getattr(error, "orig", error)
    return isinstance(cause, psycopg.Error) and cause.sqlstate == READ_ONLY


async def _drop_after_pipeline_error(conn) -> None:
    """A statement pipelined behind one that failed is skipped by the server, and so is the
    preparation psycopg sends with it the time it reaches its prepare threshold; psycopg still
    records it as prepared (it checks the result only of a statement it meets the first time).
    Pipelines fail rarely (a tenant placed elsewhere, a hold): the connection is dropped rather
    than returned to the pool with statements it believes prepared and the server never saw."""
    await conn.invalidate()


def _dead(driver: psycopg.AsyncConnection) -> bool:
    return driver.closed or driver.broken


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Set (or switch) the tenant of the session's current transaction. In a control-plane
    transaction, a tenant placed in another cell is refused (`TenantElsewhere`): its rows are
    not in this database, and a write here would be lost to it."""
    cell = session.info.get("cell")
    if cell is None:
        await session.execute(
            text("SELECT set_config('tenantry.tenant_id', :tid, true)"), {"tid": str(tenant_id)}
        )
        return
    try:
        await session.execute(
            text(
                "SELECT set_config('tenantry.tenant_id', :tid, true), "
                "tenantry_enter(CAST(:tid AS uuid), :cell, false)"
            ),
            {"tid": str(tenant_id), "cell": cell},
        )
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != MISPLACED:
            raise
        raise TenantElsewhere(
            "This operation is not available yet for a tenant placed in another cell "
            f"({error.orig.diag.message_detail}); move it back to the main cell first."
        ) from error
