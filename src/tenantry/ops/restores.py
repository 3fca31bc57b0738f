"""Restores and clones asked for through the admin API: recorded, then run by the worker's
`RestoreTenant` workflow, started through the outbox in the same transaction as the record.

One restore or clone at a time per tenant (the tenant's row is locked while asking, and a
unique index backs it), and one clone per new slug while it runs. The record shows the stage
(`queued`, `fetching`, `verifying`, `safety-backup`, `swapping` or `copying`, `done`; `retrying`
between attempts) and the rows put back per table; a failure leaves the data as it was and
says why. While a restore is `swapping`, the tenant's writes are answered 503 `tenant-restoring`
(see `identity/authn.py`).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.errors import Conflict, NotFound
from tenantry.ops import service
from tenantry.ops.models import Backup, Restore
from tenantry.ops.restore import check_revision_of
from tenantry.ops.store import BackupStore
from tenantry.settings import Settings
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant

WORKFLOW = "RestoreTenant"
BUSY = ("queued", "running")


class RestoreInProgress(Conflict):
    code, title = "restore-in-progress", "A restore is in progress"


def workflow_id(tenant: Tenant, restore_id: uuid.UUID) -> str:
    return f"{tenant.slug}/restore/{restore_id}"


async def request_restore(
    session: AsyncSession, *, slug: str, backup_id: uuid.UUID, actor: str
) -> Restore:
    """Record a restore of the tenant from its backup; the worker runs it after the commit."""
    return await _request(session, slug=slug, backup_id=backup_id, actor=actor, mode="replace")


async def request_clone(
    session: AsyncSession,
    *,
    slug: str,
    backup_id: uuid.UUID,
    new_slug: str,
    name: str | None,
    actor: str,
) -> Restore:
    """Record a clone of the tenant's backup into a new tenant `new_slug`."""
    taken = await session.scalar(select(Tenant.id).where(Tenant.slug == new_slug))
    cloning = await session.scalar(
        select(Restore.id).where(
            Restore.mode == "clone", Restore.slug == new_slug, Restore.status.in_(BUSY)
        )
    )
    if taken is not None or cloning is not None:
        raise Conflict(f"A tenant with slug '{new_slug}' already exists.", code="tenant-exists")
    return await _request(
        session,
        slug=slug,
        backup_id=backup_id,
        actor=actor,
        mode="clone",
        new_slug=new_slug,
        name=name,
    )


async def _request(
    session: AsyncSession,
    *,
    slug: str,
    backup_id: uuid.UUID,
    actor: str,
    mode: str,
    new_slug: str | None = None,
    name: str | None = None,
) -> Restore:
    tenant, backup = await service.backup_of(session, slug=slug, backup_id=backup_id, done=True)
    tenant = await tenants.get_live(session, slug=slug)  # locked: one request at a time
    busy = await session.scalar(
        select(Restore.id).where(Restore.tenant == tenant.id, Restore.status.in_(BUSY))
    )
    if busy is not None:
        raise RestoreInProgress(
            f"Restore {busy} of tenant '{slug}' is still running; ask again once it is done."
        )
    await check_revision_of(session, revision=backup.revision)
    record = Restore(
        id=uuid.uuid4(),
        tenant=tenant.id,
        slug=new_slug or tenant.slug,
        mode=mode,
        archive=backup.archive,
        source_slug=tenant.slug,
        backup=backup.id,
        status="queued",
        stage="queued",
        progress={},
        requested_by=actor,
        clone_name=name,
    )
    session.add(record)
    await session.flush()
    await cell_changes.start_workflow(  # through the tenant's outbox, in its cell
        session,
        tenant,
        workflow_type=WORKFLOW,
        workflow_id=workflow_id(tenant, record.id),
        arg={"tenant_id": str(tenant.id), "restore_id": str(record.id)},
    )
    return record


async def get_restore(
    session: AsyncSession, *, tenant_id: uuid.UUID, restore_id: uuid.UUID
) -> Restore:
    record = await session.scalar(
        select(Restore).where(Restore.tenant == tenant_id, Restore.id == restore_id)
    )
    if record is None:
        raise NotFound(f"No restore {restore_id} of this tenant.")
    return record


async def run_restore(
    db: Database,
    store: BackupStore,
    settings: Settings,
    *,
    restore_id: uuid.UUID,
    beat: Any = None,
) -> Restore:
    """Carry out the recorded restore or clone; repeatable until it is done."""
    async with db.control() as session:
        record = await session.get(Restore, restore_id, with_for_update=True)
        if record is None:
            raise NotFound(f"No restore {restore_id}.")
        if record.status == "done":
            return record
        backup = await session.get(Backup, record.backup)
        source = await session.get(Tenant, record.tenant)
        safety_id = await _finished_safety(session, record.safety_backup)
        record.status, record.stage, record.error = "running", "fetching", None
    seen: dict[str, int] = {}

    async def stage(name: str, **fields: Any) -> None:
        await _set(db, restore_id, stage=name, **fields)
        if beat is not None:
            beat(name)

    async def step(table: str, count: int) -> None:
        seen[table] = count
        await _set(db, restore_id, progress=dict(seen))
        if beat is not None:
            beat(table, count)

    try:
        return await _run(db, store, settings, record, backup, source, safety_id, stage, step)
    except Exception as error:
        # Not `swapping` any more (the tenant's writes go again): the next attempt, or `failed`.
        await _set(
            db, restore_id, stage="retrying", error=f"{type(error).__name__}: {error}"[:1000]
        )
        raise


async def _run(db, store, settings, record, backup, source, safety_id, stage, step) -> Restore:
    restore_id = record.id
    with tempfile.TemporaryDirectory(prefix="tenantry-restore-") as scratch:
        path = await store.fetch(backup.archive, Path(scratch) / Path(backup.archive).name)
        if record.mode == "replace":
            return await service.restore(
                db,
                store,
                path=path,
                slug=source.slug,
                actor=record.requested_by,
                progress=step,
                manifest_sha256=backup.manifest_sha256,
                record_id=restore_id,
                safety_id=safety_id,
                stage=stage,
            )
        done, _ = await service.clone(
            db,
            path=path,
            new_slug=record.slug,
            actor=record.requested_by,
            settings=settings,
            name=record.clone_name,
            expect_source=source.slug,
            progress=step,
            manifest_sha256=backup.manifest_sha256,
            record_id=restore_id,
            stage=stage,
        )
        return done


async def _finished_safety(session: AsyncSession, backup_id: uuid.UUID | None) -> uuid.UUID | None:
    """The safety backup an earlier attempt took, when it finished (else a new one is taken)."""
    if backup_id is None:
        return None
    status = await session.scalar(select(Backup.status).where(Backup.id == backup_id))
    return backup_id if status == "done" else None


async def _set(db: Database, restore_id: uuid.UUID, **values: Any) -> None:
    async with db.control() as session:
        await session.execute(update(Restore).where(Restore.id == restore_id).values(**values))


async def mark_failed(db: Database, *, restore_id: uuid.UUID, error: str) -> None:
    """The workflow gave up: the record says so (the swap never committed, nothing changed)."""
    await _set(db, restore_id, status="failed", error=error[:1000], finished_at=utcnow())
