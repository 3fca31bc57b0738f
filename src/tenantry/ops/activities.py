"""The backup workflow's activity: the export runs in the worker, never on the API's loop."""

from __future__ import annotations

import uuid

from temporalio import activity

from tenantry.db.session import Database
from tenantry.ops import service
from tenantry.ops.store import BackupStore
from tenantry.ops.types import BackupInput
from tenantry.settings import Settings


class OpsActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.store = BackupStore.of(settings)

    @activity.defn(name="ops.backup")
    async def backup(self, job: BackupInput) -> str:
        async def beat(table: str, rows: int) -> None:
            activity.heartbeat(table, rows)

        done = await service.run_backup(
            self.db, self.store, backup_id=uuid.UUID(job.backup_id), progress=beat
        )
        return done.status

    def all(self) -> list:
        return [self.backup]
