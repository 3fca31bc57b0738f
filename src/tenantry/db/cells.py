"""Cells: which database each tenant's transactions go to, one engine per cell made on demand.

A cell is the control-plane database itself (the default, named by `Settings.cell`) or one
registered in `cells`: a database on the same server as the control plane, or a server whose URL
an environment variable holds. Where a tenant is placed is `tenants.cell` on the control plane;
it is cached here per process. A stale cache cannot put a transaction in the wrong cell: every
tenant transaction enters its cell through `tenantry_enter`, which refuses a tenant placed
elsewhere (`Misplaced`); the caller then forgets the placement and looks it up again.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.db.urls import sqlalchemy_url
from tenantry.settings import APP_ROLE, Settings

log = structlog.get_logger("tenantry.cells")
MISPLACED = "TY001"  # tenantry_enter's SQLSTATE for a tenant placed in another cell
PLACEMENT = """
SELECT t.cell, c.database, c.url_env
FROM tenants t LEFT JOIN cells c ON c.name = t.cell
WHERE t.id = %s
"""
CELL = "SELECT database, url_env FROM cells WHERE name = %s"
REGISTERED = "SELECT name, database, url_env FROM cells ORDER BY name"


class UnknownCell(LookupError):
    pass


class Misplaced(Exception):
    """The tenant is placed in another cell than the one its transaction reached."""

    def __init__(self, tenant_id: uuid.UUID, refused_by: str, placed: str) -> None:
        super().__init__(f"tenant {tenant_id} is placed in {placed}, not {refused_by}")
        self.tenant_id, self.refused_by, self.placed = tenant_id, refused_by, placed


@dataclass(frozen=True)
class Location:
    database: str | None
    url_env: str | None


@dataclass(frozen=True)
class Cell:
    name: str
    engine: AsyncEngine
    location: Location | None = None  # None: the control plane's own database


def cell_url(base: URL, location: Location, *, password: str | None) -> URL:
    """A cell's URL from the control plane's: its database on the same server, or the URL that
    `url_env` names (with the application role and password when `base` is the app's)."""
    if location.database is not None:
        return base.set(database=location.database)
    value = os.environ.get(location.url_env or "")
    if not value:
        raise UnknownCell(f"The environment variable {location.url_env} holds no URL.")
    url = sqlalchemy_url(value)
    return url.set(username=APP_ROLE, password=password) if base.username == APP_ROLE else url


def admin_url_of(cell: Cell, main_admin_url: str) -> str:
    """The administrative URL of a cell (migrations, the owner's purges), from the control
    plane's: the same server for a database cell, the variable's URL for one elsewhere."""
    if cell.location is None:
        return main_admin_url
    url = cell_url(make_url(main_admin_url), cell.location, password=None)
    return url.render_as_string(hide_password=False)


class Cells:
    """The cells this process reaches, and where each tenant is placed."""

    def __init__(
        self,
        main: AsyncEngine,
        *,
        main_name: str = "main",
        make_engine: Callable[[URL], AsyncEngine] | None = None,
        password: str | None = None,
    ) -> None:
        self.main = Cell(main_name, main)
        self._make_engine = make_engine
        self._password = password
        self._cells: dict[str, Cell] = {main_name: self.main}
        self._placement: dict[uuid.UUID, str] = {}
        self._lock = asyncio.Lock()

    async def of_tenant(self, tenant_id: uuid.UUID) -> Cell:
        name = self._placement.get(tenant_id)
        if name is not None and name in self._cells:
            return self._cells[name]
        row = await self._fetch(PLACEMENT, tenant_id)
        if row is None or row[0] == self.main.name:
            self._placement[tenant_id] = self.main.name
            return self.main
        cell = await self._cell(row[0], Location(row[1], row[2]) if (row[1] or row[2]) else None)
        self._placement[tenant_id] = cell.name
        return cell

    async def named(self, name: str) -> Cell:
        if name in self._cells:
            return self._cells[name]
        row = await self._fetch(CELL, name)
        return await self._cell(name, Location(*row) if row else None)

    async def registered(self) -> list[Cell]:
        """Every cell: the main one first, then each registered on the control plane now (its
        engine made, not connected). One whose URL cannot be told is left out, and logged."""
        async with self.main.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            rows = await (await driver.execute(REGISTERED)).fetchall()
        found = [self.main]
        for name, database, url_env in rows:
            if name == self.main.name:
                continue
            try:
                found.append(await self._cell(name, Location(database, url_env)))
            except UnknownCell as error:
                log.warning("cell left out", cell=name, error=str(error))
        return found

    def forget(self, tenant_id: uuid.UUID) -> None:
        self._placement.pop(tenant_id, None)

    def forget_all(self) -> None:
        self._placement.clear()

    def opened(self) -> list[Cell]:
        return list(self._cells.values())

    async def _cell(self, name: str, location: Location | None) -> Cell:
        if location is None:
            raise UnknownCell(f"No cell named '{name}' is registered.")
        async with self._lock:
            if name not in self._cells:
                url = cell_url(self.main.engine.url, location, password=self._password)
                self._cells[name] = Cell(name, self._engine(url), location)
        return self._cells[name]

    def _engine(self, url: URL) -> AsyncEngine:
        if self._make_engine is not None:
            return self._make_engine(url)
        from tenantry.db.session import create_app_engine

        pool = self.main.engine.pool
        return create_app_engine(url, pool_size=pool.size(), max_overflow=0)

    async def _fetch(self, statement: str, value) -> tuple | None:
        async with self.main.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            cursor = await driver.execute(statement, [value])
            return await cursor.fetchone()

    async def dispose(self) -> None:
        for cell in list(self._cells.values()):
            if cell is not self.main:
                await cell.engine.dispose()
        self._cells = {self.main.name: self.main}


def cells_of(main: AsyncEngine, settings: Settings) -> Cells:
    """The cells as the platform's settings reach them (the application role's password)."""
    password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
    return Cells(main, main_name=settings.cell, password=password)
