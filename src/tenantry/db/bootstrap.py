"""Cluster-level setup that migrations cannot do: roles, the database, the pgvector extension.

Runs with the administrative URL. Every step is idempotent, so it runs on every start.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from tenantry.db.urls import libpq_dsn
from tenantry.settings import APP_ROLE, OWNER_ROLE, Settings


def database_admin_url(settings: Settings, server_admin_url: str) -> str:
    """The admin URL pointed at Tenantry's database (created by us when embedded)."""
    if not settings.embedded:
        return server_admin_url
    url = make_url(server_admin_url).set(database=settings.database_name)
    return url.render_as_string(hide_password=False)


def bootstrap(settings: Settings, server_admin_url: str) -> str:
    """Ensure roles, database and extension exist; return the admin URL of Tenantry's database."""
    with psycopg.connect(libpq_dsn(server_admin_url), autocommit=True) as conn:
        _ensure_roles(conn, settings)
        if settings.embedded:
            _ensure_database(conn, settings.database_name)
    db_url = database_admin_url(settings, server_admin_url)
    _prepare_database(db_url)
    return db_url


def prepare_cell(settings: Settings, server_admin_url: str, *, database: str | None) -> str:
    """Make a cell ready for migrations: the database (when on our server), roles, extensions,
    grants, as for the control plane's own; return the cell's admin URL."""
    with psycopg.connect(libpq_dsn(server_admin_url), autocommit=True) as conn:
        _ensure_roles(conn, settings)
        if database is not None:
            _ensure_database(conn, database)
    url = make_url(server_admin_url)
    if database is not None:
        url = url.set(database=database)
    cell_url = url.render_as_string(hide_password=False)
    _prepare_database(cell_url)
    return cell_url


def _prepare_database(admin_url: str) -> None:
    """Extensions and grants a Tenantry database needs before its migrations run."""
    with psycopg.connect(libpq_dsn(admin_url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        # GIN indexes that lead with tenant_id (a uuid) need btree_gin's operator classes.
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        conn.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(OWNER_ROLE))
        )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(APP_ROLE)
            )
        )


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


def _ensure_roles(conn: psycopg.Connection, settings: Settings) -> None:
    # Neither role may bypass RLS; the application role also inherits nothing and owns nothing.
    if not _role_exists(conn, OWNER_ROLE):
        conn.execute(
            sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS").format(
                sql.Identifier(OWNER_ROLE)
            )
        )
    if not _role_exists(conn, APP_ROLE):
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT"
            ).format(sql.Identifier(APP_ROLE))
        )
    if settings.app_db_password:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(settings.app_db_password.get_secret_value())
            )
        )
    user = conn.info.user
    is_member = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [user, OWNER_ROLE]).fetchone()[
        0
    ]
    if not is_member:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(OWNER_ROLE), sql.Identifier(user))
        )


def _ensure_database(conn: psycopg.Connection, name: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not exists:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(OWNER_ROLE)
            )
        )
