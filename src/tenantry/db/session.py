"""The one way services reach PostgreSQL: a transaction with the tenant set, or a control-plane one.

The tenant is set with `set_config('tenantry.tenant_id', $1, true)`: a bound parameter, local to
the transaction, so a pooled connection never carries a tenant into the next request.

The driver runs in autocommit and we send BEGIN ourselves, pipelined with `set_config`: psycopg's
implicit BEGIN waits for its own answer before anything else is sent, which would cost the tenant
a round trip of its own on every transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)

from tenantry.tenancy.context import current_tenant

TenantSlots = Callable[[uuid.UUID], asyncio.Semaphore | None]
SET_TENANT = "SELECT set_config('tenantry.tenant_id', %s, true)"

# The application must be subject to RLS: refuse superusers, BYPASSRLS roles and table owners.
UNSAFE_ROLE_CHECK = """
SELECT r.rolsuper OR r.rolbypassrls
       OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""


class UnsafeDatabaseRole(RuntimeError):
    pass


def create_app_engine(url: URL, *, pool_size: int, max_overflow: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
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
    """Hands out transactions; the caller (request, activity, command) owns commit and rollback."""

    def __init__(self, engine: AsyncEngine, *, tenant_slots: TenantSlots | None = None) -> None:
        self.engine = engine
        # Optional cap on how many connections one tenant holds at once (its tier's share).
        self.tenant_slots = tenant_slots

    @asynccontextmanager
    async def tenant(self, tenant_id: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        """A transaction that sees only `tenant_id` (default: the current tenant context)."""
        tid = tenant_id or current_tenant().id
        slot = self.tenant_slots(tid) if self.tenant_slots else None
        async with slot or contextlib.nullcontext(), self._transaction(tid) as session:
            yield session

    @asynccontextmanager
    async def control(self) -> AsyncIterator[AsyncSession]:
        """A transaction with no tenant: the control plane's tables only; tenant tables read empty."""
        async with self._transaction(None) as session:
            yield session

    @asynccontextmanager
    async def _transaction(self, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
        async with self.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            async with driver.pipeline():
                await driver.execute("BEGIN")
                if tenant_id is not None:
                    await driver.execute(SET_TENANT, [str(tenant_id)])
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                yield session
                await session.flush()
            except BaseException:
                await driver.rollback()
                raise
            else:
                await driver.commit()
            finally:
                await session.close()

    async def dispose(self) -> None:
        await self.engine.dispose()


async def set_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Set (or switch) the tenant of the session's current transaction."""
    await session.execute(
        text("SELECT set_config('tenantry.tenant_id', :tid, true)"), {"tid": str(tenant_id)}
    )
