"""The cells tenants can be placed in: registering one (its database created and migrated
first, so it carries the whole schema, roles and RLS of the control plane) and listing them.

A cell is a `pool` (many tenants, the shared task queue and workers; the main cell is one) or a
`silo` (a tenant's own placement: moving a tenant there gives it dedicated workers)."""

from __future__ import annotations

import os
import re

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import service as config_service
from tenantry.db import bootstrap, migrate
from tenantry.db.cells import Location, cell_url
from tenantry.errors import Conflict, ValidationFailed
from tenantry.outbox import service as outbox
from tenantry.settings import Settings
from tenantry.tenants.models import Cell

NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
DATABASE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
POOL, SILO = "pool", "silo"
KINDS = (POOL, SILO)


class CellExists(Conflict):
    code, title = "cell-exists", "Cell already registered"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


# The server's own databases: a cell there would mix Tenantry's tables into them.
SERVER_DATABASES = ("postgres", "template0", "template1")


def check(settings: Settings, *, name: str, database: str | None, url_env: str | None) -> Location:
    """The cell's location, or a 422 naming the field that cannot be stored."""
    if not NAME.match(name) or name == settings.cell:
        raise _invalid("name", "a cell's name is lower-case letters, digits and '-', not the main")
    if (database is None) == (url_env is None):
        raise _invalid("database", "give either a database or the variable holding a URL")
    if database is not None and not DATABASE.match(database):
        raise _invalid("database", "a database name is lower-case letters, digits and '_'")
    if database in (settings.database_name, *SERVER_DATABASES):
        raise _invalid("database", f"{database} is not a database of its own: name a new one")
    if url_env is not None and not (VARIABLE.match(url_env) and _holds_url(url_env)):
        raise _invalid("url_env", f"the environment variable {url_env} holds no URL")
    return Location(database, url_env)


def _holds_url(variable: str) -> bool:
    """Whether the variable holds a PostgreSQL URL (its value is never repeated: a secret)."""
    value = os.environ.get(variable)
    if not value:
        return False
    try:
        url = make_url(value)
    except ArgumentError:
        return False
    return url.get_backend_name() in ("postgresql", "postgres")


def provision(settings: Settings, admin_url: str, location: Location) -> str:
    """Create (when on our server) and migrate the cell's database: its admin URL. Blocking."""
    server = (
        admin_url
        if location.database is not None
        else cell_url(make_url(admin_url), location, password=None).render_as_string(
            hide_password=False
        )
    )
    url = bootstrap.prepare_cell(settings, server, database=location.database)
    migrate.upgrade(url)
    return url


async def register(
    session: AsyncSession, *, name: str, location: Location, kind: str = POOL
) -> Cell:
    if kind not in KINDS:
        raise _invalid("kind", f"a cell is one of {list(KINDS)}")
    if await session.get(Cell, name) is not None:
        raise CellExists(f"A cell named '{name}' is registered already.")
    cell = Cell(name=name, database=location.database, url_env=location.url_env, kind=kind)
    session.add(cell)
    await session.flush()
    # Once committed: the configuration listeners listen there too, and the relays' sweep
    # starts a relay for its outbox (both also find it on their own, later).
    await config_service.notify(session, config_service.CELLS)
    await outbox.wake(session, tenant_id=outbox.CHORES)
    return cell


async def list_cells(session: AsyncSession) -> list[Cell]:
    return list(await session.scalars(select(Cell).order_by(Cell.name)))


async def placements(session: AsyncSession, settings: Settings) -> list[Cell]:
    """Every cell a tenant can be placed in: the control plane's own database first (it has no
    row: it is where the registry lives), then the registered ones."""
    main = Cell(name=settings.cell, database=settings.database_name, url_env=None, kind=POOL)
    return [main, *await list_cells(session)]


async def locations(session: AsyncSession) -> dict[str, Location]:
    return {c.name: Location(c.database, c.url_env) for c in await list_cells(session)}


async def exists(session: AsyncSession, *, name: str) -> bool:
    return await session.get(Cell, name) is not None


async def kind_of(session: AsyncSession, *, name: str, settings: Settings) -> str:
    """A cell's kind; the main cell (which has no row) is a pool."""
    if name == settings.cell:
        return POOL
    cell = await session.get(Cell, name)
    if cell is None:
        raise LookupError(f"No cell named '{name}' is registered.")
    return cell.kind
