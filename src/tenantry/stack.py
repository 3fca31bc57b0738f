"""The local stack: PostgreSQL (embedded or external), its roles and migrations, first-start data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import URL

from tenantry.db import bootstrap, migrate, wal_archive
from tenantry.db.cells import cells_of
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import app_url
from tenantry.identity import bootstrap as operator_bootstrap
from tenantry.settings import Settings
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate

log = logging.getLogger(__name__)

DEMO_TENANTS = (
    TenantCreate(slug="chogar", name="Chogar", tier="enterprise"),
    TenantCreate(slug="amovil", name="Amovil", tier="standard"),
    TenantCreate(slug="afijo", name="Afijo", tier="free"),
)


@dataclass
class Stack:
    settings: Settings
    admin_url: str
    app_url: URL
    embedded: EmbeddedPostgres | None = field(default=None, repr=False)

    def database(self, *, pool_size: int = 2) -> Database:
        engine = create_app_engine(self.app_url, pool_size=pool_size, max_overflow=0)
        return Database(engine, cells=cells_of(engine, self.settings))

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def start_database(settings: Settings) -> Stack:
    """Start (or join) the database, then make sure roles, extension and migrations are in place."""
    embedded = None
    if settings.embedded:
        embedded = EmbeddedPostgres(settings.home)
        server_url = embedded.start()
        server_url = _archive_wal(embedded, server_url, settings)
    else:
        server_url = settings.database_url
    try:
        admin_url = bootstrap.bootstrap(settings, server_url)
        migrate.upgrade(admin_url)
        migrate.upgrade_cells(admin_url)
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return Stack(settings, admin_url, app_url(settings, admin_url), embedded)


def _archive_wal(embedded: EmbeddedPostgres, server_url: str, settings: Settings) -> str:
    """Turn the embedded server's WAL archiving on or off as TENANTRY_WAL_ARCHIVE says,
    restarting it when that is needed. Only the process that holds the server alone decides:
    a command run beside `tenantry run`, with another environment, never changes it."""
    if embedded.held_by_others():
        return server_url
    try:
        if wal_archive.apply(server_url, settings, pgdata=embedded.pgdata):
            server_url = embedded.restart()
            if wal_archive.apply(server_url, settings, pgdata=embedded.pgdata):
                log.warning(
                    "WAL archiving changes when the embedded PostgreSQL next starts: "
                    "another process started holding it meanwhile"
                )
    except BaseException:
        embedded.stop()
        raise
    return server_url


@dataclass(frozen=True)
class FirstStart:
    bootstrap: operator_bootstrap.Bootstrap | None
    demo_tenants: tuple[str, ...]


async def provision_defaults(stack: Stack) -> FirstStart:
    """Keep the bootstrap token (see `identity.bootstrap`); on the very first start also create
    the demo tenants."""
    settings = stack.settings
    given = settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None
    db = stack.database()
    try:
        async with db.control() as session:
            token = await operator_bootstrap.provision(session, given=given, home=settings.home)
        created: list[str] = []
        if token.first and settings.demo_tenants:
            for demo in DEMO_TENANTS:
                async with db.control() as session:
                    await tenants.create(
                        session, data=demo, actor="system:first-start", settings=settings
                    )
                created.append(demo.slug)
        return FirstStart(token, tuple(created))
    finally:
        await db.dispose()
