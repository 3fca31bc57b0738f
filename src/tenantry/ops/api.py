"""`/v1/admin/tenants/{slug}/backups`, `…/restores` and `…/clones`: operators request, follow and
verify a tenant's backups, and restore or clone the tenant from one.

Requesting one records it and starts its workflow through the outbox; the export, restore or
clone runs in a worker, and the record shows its progress (rows per table) while it runs.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, status

from tenantry.api_support import database, settings_of
from tenantry.api_types import SlugRef
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.ops import restores, service
from tenantry.ops.schemas import BackupOut, CloneIn, RestoreIn, RestoreOut, VerifyOut
from tenantry.ops.store import BackupStore
from tenantry.ops.verify import verify
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant

router = APIRouter(prefix="/v1/admin/tenants/{slug}/backups", tags=["admin: backups"])
restore_router = APIRouter(prefix="/v1/admin/tenants/{slug}", tags=["admin: backups"])
Db = Annotated[Database, Depends(database)]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BackupOut, **guard(OPERATOR))
async def request_backup(slug: SlugRef, operator: Caller, db: Db) -> BackupOut:
    async with db.control() as session:
        backup = await service.request_backup(session, slug=slug, actor=operator.audit_name)
        tenant = await session.get(Tenant, backup.tenant)  # loaded already: no query
    await cell_changes.apply_owed(db, tenant)
    return BackupOut.model_validate(backup)


@router.get("", response_model=Page[BackupOut], **guard(OPERATOR))
async def list_backups(
    slug: SlugRef, operator: Caller, db: Db, paging: PageParams
) -> Page[BackupOut]:
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
        rows, next_cursor = await service.list_backups(
            session, tenant_id=tenant.id, cursor=paging.cursor, limit=paging.limit
        )
    return Page[BackupOut](
        items=[BackupOut.model_validate(b) for b in rows],
        next_cursor=next_cursor,
        limit=paging.limit,
    )


@router.get("/{backup_id}", response_model=BackupOut, **guard(OPERATOR))
async def show_backup(slug: SlugRef, backup_id: uuid.UUID, operator: Caller, db: Db) -> BackupOut:
    async with db.control() as session:
        _, backup = await service.backup_of(session, slug=slug, backup_id=backup_id)
    return BackupOut.model_validate(backup)


@router.post("/{backup_id}/verify", response_model=VerifyOut, **guard(OPERATOR))
async def verify_backup(
    slug: SlugRef,
    backup_id: uuid.UUID,
    operator: Caller,
    db: Db,
    settings: Annotated[Settings, Depends(settings_of)],
) -> VerifyOut:
    """Fetch the archive from the store and check it: checksums, manifest, audit chain."""
    async with db.control() as session:
        _, backup = await service.backup_of(session, slug=slug, backup_id=backup_id, done=True)
    with tempfile.TemporaryDirectory(prefix="tenantry-verify-") as scratch:
        path = await BackupStore.of(settings).fetch(
            backup.archive, Path(scratch) / Path(backup.archive).name
        )
        # Hashing a large archive is CPU work: off the event loop.
        report = await asyncio.to_thread(verify, path, manifest_sha256=backup.manifest_sha256)
    return VerifyOut.of(report)


@restore_router.post(
    "/restores", status_code=status.HTTP_202_ACCEPTED, response_model=RestoreOut, **guard(OPERATOR)
)
async def request_restore(slug: SlugRef, body: RestoreIn, operator: Caller, db: Db) -> RestoreOut:
    """Replace the tenant's data with a backup's: verified, after a safety backup, in one swap."""
    async with db.control() as session:
        record = await restores.request_restore(
            session, slug=slug, backup_id=body.backup_id, actor=operator.audit_name
        )
        tenant = await session.get(Tenant, record.tenant)  # loaded already: no query
    await cell_changes.apply_owed(db, tenant)
    return RestoreOut.model_validate(record)


@restore_router.post(
    "/clones", status_code=status.HTTP_202_ACCEPTED, response_model=RestoreOut, **guard(OPERATOR)
)
async def request_clone(slug: SlugRef, body: CloneIn, operator: Caller, db: Db) -> RestoreOut:
    """A new tenant holding a copy of one of this tenant's backups, every id renumbered."""
    async with db.control() as session:
        record = await restores.request_clone(
            session,
            slug=slug,
            backup_id=body.backup_id,
            new_slug=body.slug,
            name=body.name,
            actor=operator.audit_name,
        )
        tenant = await session.get(Tenant, record.tenant)  # loaded already: no query
    await cell_changes.apply_owed(db, tenant)
    return RestoreOut.model_validate(record)


@restore_router.get("/restores/{restore_id}", response_model=RestoreOut, **guard(OPERATOR))
async def show_restore(
    slug: SlugRef, restore_id: uuid.UUID, operator: Caller, db: Db
) -> RestoreOut:
    """A restore or clone asked of this tenant, with its stage and rows put back so far."""
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
        record = await restores.get_restore(session, tenant_id=tenant.id, restore_id=restore_id)
    return RestoreOut.model_validate(record)
