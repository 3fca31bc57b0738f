"""Apply Alembic migrations as the owner role, and tell whether the database is at head."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tenantry.db.urls import libpq_dsn, sqlalchemy_url
from tenantry.settings import OWNER_ROLE

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(db_admin_url: str, revision: str = "head") -> None:
    """Run as `tenantry_owner`, so that the objects belong to it and never to a superuser."""
    engine = create_engine(sqlalchemy_url(db_admin_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'SET ROLE "{OWNER_ROLE}"'))
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def current_revision_sync(conn) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade_cells(db_admin_url: str) -> list[str]:
    """Migrate every registered cell like the control plane: the same schema, roles and RLS."""
    from tenantry.db.cells import Cell, Location, admin_url_of

    with psycopg.connect(libpq_dsn(db_admin_url), autocommit=True) as conn:
        rows = conn.execute("SELECT name, database, url_env FROM cells ORDER BY name").fetchall()
    for name, database, url_env in rows:
        cell = Cell(name, None, Location(database, url_env))  # type: ignore[arg-type]
        upgrade(admin_url_of(cell, db_admin_url))
    return [row[0] for row in rows]
