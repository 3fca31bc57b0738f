"""The backup, restore and move workflows' activities: exports, restores, pruning and moves
run in the worker, never on the API's loop."""

from __future__ import annotations

import uuid

from temporalio import activity

from tenantry.db.session import Database
from tenantry.ops import moves, restores, retention, service
from tenantry.ops.store import BackupStore
from tenantry.ops.types import BackupInput, MoveInput, RestoreInput, ScheduledBackup
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant


class OpsActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.store = BackupStore.of(settings)
        # The owner's rights purge the audit chain a moved tenant leaves behind.
        self.admin_url = settings.database_url

    @activity.defn(name="ops.backup")
    async def backup(self, job: BackupInput) -> str:
        async def beat(table: str, rows: int) -> None:
            activity.heartbeat(table, rows)

        done = await service.run_backup(
            self.db, self.store, backup_id=uuid.UUID(job.backup_id), progress=beat
        )
        return done.status

    @activity.defn(name="ops.record_scheduled")
    async def record_scheduled(self, job: ScheduledBackup) -> str:
        backup = await service.record_scheduled(
            self.db,
            tenant_id=uuid.UUID(job.tenant_id),
            backup_id=uuid.UUID(job.backup_id),
            cadence=job.cadence,
            schedule=job.schedule,
        )
        return str(backup.id)

    @activity.defn(name="ops.prune")
    async def prune(self, tenant_id: str) -> list[str]:
        async with self.db.control() as session:
            tenant = await session.get(Tenant, uuid.UUID(tenant_id))
        pruned = await retention.prune(self.db, self.store, slug=tenant.slug)
        return pruned["pruned"]

    @activity.defn(name="ops.restore")
    async def restore(self, job: RestoreInput) -> str:
        done = await restores.run_restore(
            self.db,
            self.store,
            self.settings,
            restore_id=uuid.UUID(job.restore_id),
            beat=activity.heartbeat,
        )
        return done.status

    @activity.defn(name="ops.restore_failed")
    async def restore_failed(self, job: RestoreInput, error: str) -> None:
        await restores.mark_failed(self.db, restore_id=uuid.UUID(job.restore_id), error=error)

    @activity.defn(name="ops.move")
    async def move(self, job: MoveInput) -> str:
        async def beat(table: str, rows: int) -> None:
            activity.heartbeat(table, rows)

        done = await moves.run_move(
            self.db,
            move_id=uuid.UUID(job.move_id),
            admin_url=self.admin_url,
            progress=beat,
            settings=self.settings,
        )
        return done.status

    def all(self) -> list:
        return [
            self.backup,
            self.record_scheduled,
            self.prune,
            self.restore,
            self.restore_failed,
            self.move,
        ]
