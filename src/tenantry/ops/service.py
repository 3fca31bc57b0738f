"""Backups, verification, restores and clones of one tenant: the one service behind the admin
API, the workflow's activity and the CLI.

A backup is a record (`backups`) and an archive in the backup store. The API requests one (the
record and the workflow's start commit together, through the outbox) and the worker takes it;
the CLI takes one in its own process, with a progress bar. Restores and clones run in the CLI's
process or in the worker (asked through the admin API: see `restores.py`), as a few
transactions: verify, a safety backup of the target, then one transaction that swaps the rows
(all or nothing).
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.db.session import Database, set_tenant
from tenantry.errors import AppError, Conflict, NotFound
from tenantry.ops import restore as rows
from tenantry.ops.archive import Archive
from tenantry.ops.export import Exported, Progress, export_tenant
from tenantry.ops.models import Backup, Restore
from tenantry.ops.store import BackupStore
from tenantry.ops.verify import Report, verify
from tenantry.settings import Settings
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant
from tenantry.tenants.schemas import TenantCreate

WORKFLOW = "BackupTenant"
BACKUPS = Keyset("backups", (Backup.created_at, Backup.id), descending=True)


class ArchiveCorrupt(AppError):
    status, code, title = 422, "archive-corrupt", "Archive corrupt"

    def __init__(self, report: Report) -> None:
        super().__init__(
            f"The archive {report.archive} failed verification: " + "; ".join(report.problems),
            errors=[{"field": "archive", "message": problem} for problem in report.problems],
        )
        self.report = report


class OtherTenant(Conflict):
    code, title = "archive-of-another-tenant", "Archive of another tenant"


def archive_key(tenant: Tenant, backup_id: uuid.UUID) -> str:
    return f"{tenant.slug}/{utcnow():%Y%m%dT%H%M%SZ}-{backup_id}.tar"


def workflow_id(tenant: Tenant, backup_id: uuid.UUID) -> str:
    return f"{tenant.slug}/backup/{backup_id}"


def source_of(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "slug": tenant.slug, "name": tenant.name, "tier": tenant.tier}


async def new_backup(
    session: AsyncSession,
    *,
    tenant: Tenant,
    actor: str,
    kind: str = "manual",
    cadence: str | None = None,
    backup_id: uuid.UUID | None = None,
) -> Backup:
    backup_id = backup_id or uuid.uuid4()
    backup = Backup(
        id=backup_id,
        tenant=tenant.id,
        slug=tenant.slug,
        kind=kind,
        cadence=cadence,
        status="queued",
        archive=archive_key(tenant, backup_id),
        progress={},
        requested_by=actor,
    )
    session.add(backup)
    await session.flush()
    return backup


async def request_backup(
    session: AsyncSession,
    *,
    slug: str,
    actor: str,
    kind: str = "manual",
    cadence: str | None = None,
) -> Backup:
    """Record a backup and start its workflow once this transaction commits."""
    tenant = await tenants.get_live(session, slug=slug)
    backup = await new_backup(session, tenant=tenant, actor=actor, kind=kind, cadence=cadence)
    await cell_changes.start_workflow(  # through the tenant's outbox, in its cell
        session,
        tenant,
        workflow_type=WORKFLOW,
        workflow_id=workflow_id(tenant, backup.id),
        arg={"tenant_id": str(tenant.id), "backup_id": str(backup.id)},
    )
    return backup


async def get_backup(
    session: AsyncSession, *, tenant_id: uuid.UUID, backup_id: uuid.UUID
) -> Backup:
    backup = await session.scalar(
        select(Backup).where(Backup.tenant == tenant_id, Backup.id == backup_id)
    )
    if backup is None:
        raise NotFound(f"No backup {backup_id} of this tenant.")
    return backup


async def backup_of(
    session: AsyncSession, *, slug: str, backup_id: uuid.UUID, done: bool = False
) -> tuple[Tenant, Backup]:
    """The tenant and its backup (404 for another tenant's, like an unknown one); with `done`,
    refuse one that is not finished."""
    tenant = await tenants.get(session, slug=slug)
    backup = await get_backup(session, tenant_id=tenant.id, backup_id=backup_id)
    if done and backup.status != "done":
        raise Conflict(f"Backup {backup_id} is {backup.status}.", code="backup-not-done")
    return tenant, backup


async def record_scheduled(
    db: Database, *, tenant_id: uuid.UUID, backup_id: uuid.UUID, cadence: str, schedule: str
) -> Backup:
    """The record of a schedule's backup, made once: a retry finds the one it made."""
    async with db.control() as session:
        backup = await session.get(Backup, backup_id)
        if backup is not None:
            return backup
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
        if slug is None:
            raise NotFound(f"No tenant {tenant_id}.")
        tenant = await tenants.get_live(session, slug=slug)
        return await new_backup(
            session,
            tenant=tenant,
            actor=f"schedule:{schedule}",
            kind="scheduled",
            cadence=cadence,
            backup_id=backup_id,
        )


async def list_backups(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[Backup], str | None]:
    """The tenant's backups, newest first, a page at a time."""
    query = select(Backup).where(Backup.tenant == tenant_id)
    return await page(session, query, keyset=BACKUPS, cursor=cursor, limit=limit)


async def run_backup(
    db: Database, store: BackupStore, *, backup_id: uuid.UUID, progress: Progress | None = None
) -> Backup:
    """Take the recorded backup: export, upload, record the outcome. Repeatable until done."""
    async with db.control() as session:
        backup = await session.get(Backup, backup_id, with_for_update=True)
        if backup is None:
            raise NotFound(f"No backup {backup_id}.")
        if backup.status == "done":
            return backup
        tenant = await session.get(Tenant, backup.tenant)
        backup.status, backup.started_at, backup.progress = "running", utcnow(), {}
    seen: dict[str, int] = {}

    async def step(table: str, count: int) -> None:
        seen[table] = count
        async with db.control() as session:
            await session.execute(
                update(Backup).where(Backup.id == backup_id).values(progress=dict(seen))
            )
        if progress is not None:
            await progress(table, count)

    try:
        exported, size = await _export_and_store(db, store, tenant, backup.archive, step)
    except Exception as error:
        async with db.control() as session:
            await session.execute(
                update(Backup)
                .where(Backup.id == backup_id)
                .values(status="failed", error=f"{type(error).__name__}: {error}"[:1000])
            )
        raise
    async with db.control() as session:
        backup = await session.get(Backup, backup_id, with_for_update=True)
        backup.status, backup.finished_at = "done", utcnow()
        backup.rows, backup.bytes = exported.rows, size
        backup.manifest_sha256 = exported.manifest_sha256
        backup.revision = exported.manifest["revision"]
        backup.error = None
        # The tenant's data left the database: its chain says when, for whom and where to.
        await cell_changes.audit_event(
            session,
            tenant,
            actor=backup.requested_by,
            action="tenant.backed_up",
            target=f"backup:{backup.id}",
            before=None,
            after={
                "kind": backup.kind,
                "archive": backup.archive,
                "manifest_sha256": backup.manifest_sha256,
                "rows": backup.rows,
                "bytes": backup.bytes,
            },
        )
    await cell_changes.apply_owed(db, tenant)
    return backup


async def _export_and_store(
    db: Database, store: BackupStore, tenant: Tenant, key: str, progress: Progress
) -> tuple[Exported, int]:
    with tempfile.TemporaryDirectory(prefix="tenantry-backup-") as scratch:
        path = Path(scratch) / "archive.tar"
        exported = await export_tenant(db, tenant=source_of(tenant), into=path, progress=progress)
        stored = await store.put(key, path)
    return exported, stored.size


async def take_backup(
    db: Database,
    store: BackupStore,
    *,
    slug: str,
    actor: str,
    kind: str = "manual",
    progress: Progress | None = None,
) -> Backup:
    """Record and take a backup in this process (the CLI's way, and a restore's safety copy)."""
    async with db.control() as session:
        tenant = await tenants.get_live(session, slug=slug)
        backup = await new_backup(session, tenant=tenant, actor=actor, kind=kind)
    return await run_backup(db, store, backup_id=backup.id, progress=progress)


def check(path: Path, *, manifest_sha256: str | None = None) -> Report:
    """Verify the archive at `path`; refuse it (ArchiveCorrupt) when anything is wrong."""
    report = verify(path, manifest_sha256=manifest_sha256)
    if not report.ok:
        raise ArchiveCorrupt(report)
    return report


Stage = Callable[..., Awaitable[None]]
# The exclusive side of the lock every write transaction of the tenant takes shared when it
# enters its cell (`tenantry_enter`): it waits for those in flight and turns new ones read-only.
HOLD_WRITES = "SELECT pg_advisory_xact_lock(tenantry_hold_key(:t))"


async def _no_stage(name: str, **fields: Any) -> None:
    return None


async def verified(path: Path, *, manifest_sha256: str | None = None) -> Archive:
    """The archive, once every checksum in it held (hashing is CPU work: off the loop)."""
    await asyncio.to_thread(check, path, manifest_sha256=manifest_sha256)
    return Archive.open(path)


async def restore(
    db: Database,
    store: BackupStore,
    *,
    path: Path,
    slug: str,
    actor: str,
    progress: Progress | None = None,
    manifest_sha256: str | None = None,
    record_id: uuid.UUID | None = None,
    safety_id: uuid.UUID | None = None,
    stage: Stage = _no_stage,
) -> Restore:
    """Replace the tenant's rows with the archive's: verify, safety backup, swap in one go.

    `record_id`, `safety_id` and `stage` are the workflow's: the record it updates, the safety
    backup an earlier attempt took, and where each step is reported."""
    await stage("verifying")
    archive = await verified(path, manifest_sha256=manifest_sha256)
    async with db.control() as session:
        target = await tenants.get_live(session, slug=slug)
    if archive.manifest["tenant"]["id"] != str(target.id):
        raise OtherTenant(
            f"The archive is of tenant '{archive.manifest['tenant']['slug']}', not '{slug}': "
            "clone it into a new tenant instead (--as NEW_SLUG)."
        )
    if safety_id is None:
        await stage("safety-backup")
        safety_id = (await take_backup(db, store, slug=slug, actor=actor, kind="safety")).id
    await stage("swapping", safety_backup=safety_id)
    async with db.control() as session:
        tenant = await tenants.get_live(session, slug=slug)
        if not cell_changes.elsewhere(session, tenant):
            restored = await rows.replace(
                session, archive=archive, tenant_id=tenant.id, progress=progress
            )
            record = await _record(
                session, tenant, archive, actor, "replace", restored, safety_id, record_id
            )
            await _audit(session, tenant, actor, "tenant.restored", archive, restored, safety_id)
            return record
    # Placed in another cell: the swap and its audit event commit there, in one transaction,
    # then the record here (a retry in between swaps the same archive in again, and says so).
    # The cell's request path cannot see this record's stage, so the swap holds the tenant's
    # writes as a move does: they answer 503 `tenant-moving` until it commits, reads go on.
    async with db.tenant(tenant.id) as session:
        await session.execute(text(HOLD_WRITES), {"t": tenant.id})
        restored = await rows.replace(
            session, archive=archive, tenant_id=tenant.id, progress=progress
        )
        await _audit(session, tenant, actor, "tenant.restored", archive, restored, safety_id)
    async with db.control() as session:
        return await _record(
            session, tenant, archive, actor, "replace", restored, safety_id, record_id
        )


async def clone(
    db: Database,
    *,
    path: Path,
    new_slug: str,
    actor: str,
    settings: Settings,
    name: str | None = None,
    expect_source: str | None = None,
    progress: Progress | None = None,
    manifest_sha256: str | None = None,
    record_id: uuid.UUID | None = None,
    stage: Stage = _no_stage,
) -> tuple[Restore, rows.IdMap]:
    """A new tenant `new_slug` holding the archive's data, every id renumbered: the tenant and
    its rows commit together or not at all."""
    await stage("verifying")
    archive = await verified(path, manifest_sha256=manifest_sha256)
    source = archive.manifest["tenant"]
    if expect_source is not None and source["slug"] != expect_source:
        raise OtherTenant(f"The archive is of tenant '{source['slug']}', not '{expect_source}'.")
    await stage("copying")
    async with db.control() as session:
        data = TenantCreate(slug=new_slug, name=name or source["name"], tier=source["tier"])
        tenant = await tenants.create(session, data=data, actor=actor, settings=settings)
        copied, mapping = await rows.clone(
            session, archive=archive, tenant_id=tenant.id, progress=progress
        )
        record = await _record(session, tenant, archive, actor, "clone", copied, None, record_id)
        await _audit(session, tenant, actor, "tenant.cloned", archive, copied, None)
    return record, mapping


async def _record(
    session: AsyncSession,
    tenant: Tenant,
    archive: Archive,
    actor: str,
    mode: str,
    counts: dict[str, int],
    safety: uuid.UUID | None,
    record_id: uuid.UUID | None = None,
) -> Restore:
    """The restore's record, done: a new one, or the workflow's own (a clone's stays with the
    tenant it was asked of, and its slug names the new tenant)."""
    now = utcnow()
    record = None if record_id is None else await session.get(Restore, record_id)
    if record is None:  # asked and done at once (the CLI): it was created when it finished
        record = Restore(
            id=uuid.uuid4(),
            created_at=now,
            tenant=tenant.id,
            slug=tenant.slug,
            mode=mode,
            archive=archive.path.name,
            requested_by=actor,
        )
        session.add(record)
    record.source_slug = archive.manifest["tenant"]["slug"]
    record.status = record.stage = "done"
    record.progress = counts
    record.safety_backup = safety
    record.error = None
    record.finished_at = now
    await session.flush()
    return record


async def _audit(
    session: AsyncSession,
    tenant: Tenant,
    actor: str,
    action: str,
    archive: Archive,
    counts: dict[str, int],
    safety: uuid.UUID | None,
) -> None:
    """Last, after every row it changed (the chain's lock is taken after the rows' locks)."""
    await set_tenant(session, tenant.id)
    manifest = archive.manifest
    await audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action=action,
        target=f"tenant:{tenant.slug}",
        after={
            "archive": archive.path.name,
            "manifest_sha256": archive.manifest_sha256,
            "source": manifest["tenant"]["slug"],
            "source_audit_head": manifest.get("audit_head"),
            "taken_at": manifest["created_at"],
            "rows": counts,
            "safety_backup": str(safety) if safety else None,
        },
    )
