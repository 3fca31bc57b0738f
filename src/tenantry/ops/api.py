"""`/v1/admin/tenants/{slug}/backups`: operators request, follow and verify a tenant's backups.

Requesting one records it and starts its workflow through the outbox; the export runs in a
worker, and the record shows its progress (rows per table) while it runs.
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
from tenantry.errors import Conflict
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.ops import service
from tenantry.ops.schemas import BackupOut, VerifyOut
from tenantry.ops.store import BackupStore
from tenantry.ops.verify import verify
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenants import service as tenants

router = APIRouter(prefix="/v1/admin/tenants/{slug}/backups", tags=["admin: backups"])
Db = Annotated[Database, Depends(database)]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BackupOut, **guard(OPERATOR))
async def request_backup(slug: SlugRef, operator: Caller, db: Db) -> BackupOut:
    async with db.control() as session:
        backup = await service.request_backup(session, slug=slug, actor=operator.audit_name)
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
        tenant = await tenants.get(session, slug=slug)
        backup = await service.get_backup(session, tenant_id=tenant.id, backup_id=backup_id)
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
        tenant = await tenants.get(session, slug=slug)
        backup = await service.get_backup(session, tenant_id=tenant.id, backup_id=backup_id)
    if backup.status != "done":
        raise Conflict(f"Backup {backup_id} is {backup.status}.", code="backup-not-done")
    with tempfile.TemporaryDirectory(prefix="tenantry-verify-") as scratch:
        path = await BackupStore.of(settings).fetch(
            backup.archive, Path(scratch) / Path(backup.archive).name
        )
        # Hashing a large archive is CPU work: off the event loop.
        report = await asyncio.to_thread(verify, path, manifest_sha256=backup.manifest_sha256)
    return VerifyOut.of(report)
