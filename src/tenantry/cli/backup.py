"""`tenantry backup …`: take, verify, list and restore tenant backups from the operator's shell.

`create` and `restore` run in this process (the operator watches a progress bar, on stderr;
the result goes to stdout as JSON); the admin API's backups run in a worker instead.
An ARCHIVE is a file on this machine or a key in the backup store (`SLUG/….tar`).
"""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tenantry.cli.common import cli_actor, emit, fail, run_with_db
from tenantry.keys.service import TenantKeys, platform_key
from tenantry.ops import retention, schedules
from tenantry.ops import service as ops
from tenantry.ops.schemas import BackupOut, RestoreOut, VerifyOut
from tenantry.ops.store import BackupStore
from tenantry.ops.tables import AUDIT, DATA
from tenantry.ops.verify import verify as verify_archive
from tenantry.pages import Page
from tenantry.settings import get_settings
from tenantry.tenants import service as tenants
from tenantry.worker.client import connect

app = typer.Typer(help="Back up, verify, list and restore tenants.", no_args_is_help=True)
schedules_app = typer.Typer(
    help="The tenants' backup schedules in Temporal (one per cadence of each tier).",
    no_args_is_help=True,
)
app.add_typer(schedules_app, name="schedules")


class Bar:
    """A progress bar of tables done, each with its rows, on stderr."""

    def __init__(self, title: str, tables: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(title, total=tables, last="")

    async def __call__(self, table: str, rows: int) -> None:
        self.progress.update(self.task, advance=1, last=f"{table}: {rows} rows")

    def __enter__(self) -> Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()


@asynccontextmanager
async def local_archive(archive: str, store: BackupStore):
    """The archive as a local file: itself, or fetched from the store into a scratch folder."""
    path = Path(archive)
    if await asyncio.to_thread(path.is_file):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tenantry-archive-") as scratch:
        try:
            fetched = await store.fetch(archive, Path(scratch) / Path(archive).name)
        # ValueError: not a key the store accepts ("..", a control character)
        except (FileNotFoundError, ValueError):
            fail(f"No archive '{archive}': neither a file here nor a key in the backup store.")
        yield fetched


@app.command()
def create(slug: str) -> None:
    """Back up one tenant now, into the backup store."""

    async def work(db, stack):
        store = BackupStore.of(stack.settings)
        with Bar(f"backup {slug}", len(DATA) + len(AUDIT)) as bar:
            backup = await ops.take_backup(db, store, slug=slug, actor=cli_actor(), progress=bar)
        return BackupOut.model_validate(backup)

    emit(run_with_db(work))


@app.command("list")
def list_(
    slug: str,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the last page.")] = None,
) -> None:
    """The tenant's backups, newest first."""

    async def work(db, stack):
        async with db.control() as session:
            tenant = await tenants.get(session, slug=slug)
            rows, next_cursor = await ops.list_backups(
                session, tenant_id=tenant.id, cursor=cursor, limit=limit
            )
        return Page[BackupOut](
            items=[BackupOut.model_validate(b) for b in rows], next_cursor=next_cursor, limit=limit
        )

    emit(run_with_db(work))


@app.command()
def verify(archive: str) -> None:
    """Check an archive: the manifest, every file's SHA-256, and the audit chain inside it."""

    async def check() -> VerifyOut:
        async with local_archive(archive, BackupStore.of(get_settings())) as path:
            return VerifyOut.of(await asyncio.to_thread(verify_archive, path))

    report = asyncio.run(check())
    emit(report)
    if not report.ok:
        fail(f"{report.archive} failed verification: " + "; ".join(report.problems))


@app.command()
def restore(
    archive: str,
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the archive was taken of.")],
    as_slug: Annotated[
        str | None, typer.Option("--as", help="Clone into a new tenant with this slug instead.")
    ] = None,
) -> None:
    """Replace the tenant's data with the archive's (verified first, after a safety backup),
    or with --as clone it into a new tenant with every id renumbered."""

    async def work(db, stack):
        store = BackupStore.of(stack.settings)
        async with local_archive(archive, store) as path:
            with Bar(f"restore {as_slug or tenant}", len(DATA)) as bar:
                if as_slug is not None:
                    record, _ = await ops.clone(
                        db,
                        path=path,
                        new_slug=as_slug,
                        actor=cli_actor(),
                        settings=stack.settings,
                        expect_source=tenant,
                        progress=bar,
                    )
                else:
                    record = await ops.restore(
                        db, store, path=path, slug=tenant, actor=cli_actor(), progress=bar
                    )
        return RestoreOut.model_validate(record)

    emit(run_with_db(work))


@app.command()
def prune(
    slug: str,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be deleted.")] = False,
) -> None:
    """Delete the tenant's backups its tier's retention no longer keeps."""

    async def work(db, stack):
        store = BackupStore.of(stack.settings)
        return await retention.prune(db, store, slug=slug, dry_run=dry_run)

    emit(run_with_db(work))


async def temporal(db, settings):
    """The platform's Temporal client, with the tenants' keys (schedule arguments are theirs)."""
    address = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    keys = TenantKeys(db, platform_key(settings))
    return await connect(address, settings.temporal_namespace, keys=keys)


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Make Temporal's backup schedules match the tenants: create what is missing, fix what
    drifted, remove the schedules of tenants that are gone. Safe to run at any time."""

    async def work(db, stack):
        client = await temporal(db, stack.settings)
        return await schedules.sync_all(db, client, stack.settings)

    emit(run_with_db(work))


@schedules_app.command("list")
def schedules_list(
    slug: Annotated[str | None, typer.Argument(help="One tenant's (default: all).")] = None,
) -> None:
    """The backup schedules Temporal holds: cron, overlap policy, action, paused, next runs."""

    async def work(db, stack):
        if slug is not None:
            async with db.control() as session:
                await tenants.get(session, slug=slug)
        client = await temporal(db, stack.settings)
        return await schedules.list_schedules(client, slug=slug)

    emit(run_with_db(work))
