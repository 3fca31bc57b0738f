"""`tenantry pitr …`: point-in-time recovery of the cluster, and of one tenant through it.

    tenantry pitr base-backup DEST
    tenantry pitr recover BASE --wal ARCHIVE --to TIME --into DIR [--port N]
    tenantry pitr export-tenant SLUG --from-url URL [--out FILE]
    tenantry pitr stop DIR

WAL reaches ARCHIVE when TENANTRY_WAL_ARCHIVE names it (the embedded server) or when the
server's own archive_command copies it there. See docs/operations.md for the runbook.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from tenantry.cli.common import emit, fail, opened_stack
from tenantry.db.base import utcnow
from tenantry.errors import AppError
from tenantry.ops import pitr
from tenantry.ops.store import BackupStore
from tenantry.settings import get_settings

app = typer.Typer(
    help="Point-in-time recovery: base backups, a recovered scratch instance, one tenant from it.",
    no_args_is_help=True,
)


def refused(error: AppError) -> None:
    fail(f"{error.title}: {error.detail}")


@app.command("base-backup")
def base_backup(dest: Path) -> None:
    """Take a base backup of the whole cluster into DEST (new or empty), with a SHA-256
    manifest, and check it with pg_verifybackup."""
    with opened_stack() as stack:
        try:
            taken = pitr.base_backup(stack.admin_url, dest.resolve())
        except AppError as error:
            refused(error)
    emit(
        {
            "path": str(taken.path),
            "bytes": taken.bytes,
            "started_at": taken.started_at,
            "wal_start": taken.wal_start,
            "verified": True,
        }
    )


@app.command()
def recover(
    base: Path,
    wal: Annotated[Path, typer.Option("--wal", help="The WAL archive folder.")],
    to: Annotated[str, typer.Option("--to", help="Recover up to this time, with its zone.")],
    into: Annotated[Path, typer.Option("--into", help="A new folder for the recovered copy.")],
    port: Annotated[int, typer.Option(help="Its port (a Unix socket in DIR).", min=1)] = 5432,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for recovery.", min=1)] = 600,
) -> None:
    """Start a scratch copy of BASE that replays the archive's WAL up to TIME and is promoted;
    prints its URL. The live server is not touched."""
    try:
        target = datetime.fromisoformat(to)
    except ValueError:
        fail(f"--to: not a time: {to!r} (e.g. 2026-11-30 16:45:00+00)", code=2)
    user, database = pitr.connection_names(get_settings())
    try:
        recovered = pitr.recover(
            base.resolve(),
            wal=wal.resolve(),
            to=target,
            into=into.resolve(),
            port=port,
            user=user,
            database=database,
            timeout=timeout,
        )
    except AppError as error:
        refused(error)
    emit(
        {
            "pgdata": str(recovered.pgdata),
            "url": recovered.url,
            "pid": recovered.pid,
            "recovered_to": target.isoformat(),
            "last_replayed_commit": recovered.last_replayed_commit,
        }
    )


@app.command("export-tenant")
def export_tenant(
    slug: str,
    from_url: Annotated[
        str, typer.Option("--from-url", help="The recovered instance (as `recover` prints it).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Write the archive here; default: the backup store.")
    ] = None,
) -> None:
    """Export one tenant from a recovered instance into an ordinary backup archive, which
    `tenantry backup verify` checks and `tenantry backup restore` restores."""
    settings = get_settings()

    async def work() -> dict:
        if out is not None:
            exported = await pitr.export_at(
                from_url, slug=slug, into=out.resolve(), settings=settings
            )
            return {"archive": str(exported.path), **_summary(exported)}
        with tempfile.TemporaryDirectory(prefix="tenantry-pitr-") as scratch:
            path = Path(scratch) / "archive.tar"
            exported = await pitr.export_at(from_url, slug=slug, into=path, settings=settings)
            key = f"{slug}/pitr-{utcnow():%Y%m%dT%H%M%SZ}.tar"
            await BackupStore.of(settings).put(key, path)
        return {"archive": key, **_summary(exported)}

    try:
        emit(asyncio.run(work()))
    except AppError as error:
        refused(error)
    except (OSError, SQLAlchemyError) as error:
        fail(f"Cannot export from {from_url}: {error}")


def _summary(exported) -> dict:
    return {
        "rows": {name: entry["rows"] for name, entry in exported.manifest["tables"].items()},
        "revision": exported.manifest["revision"],
        "manifest_sha256": exported.manifest_sha256,
    }


@app.command()
def stop(pgdata: Path) -> None:
    """Stop a recovered instance started by `recover`."""
    try:
        pitr.stop(pgdata.resolve())
    except AppError as error:
        refused(error)
    emit({"stopped": str(pgdata.resolve())})
