"""The activity every counted workflow runs last: give its `workflows_in_flight` slot back (the
freed slot NOTIFYs the relay, which starts the tenant's next waiting workflow)."""

from __future__ import annotations

import uuid

from temporalio import activity

from tenantry.db.session import Database
from tenantry.outbox import slots


class OutboxActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="workflows.release")
    async def release(self, tenant_id: str) -> bool:
        async with self.db.tenant(uuid.UUID(tenant_id)) as session:
            return await slots.release(
                session, tenant_id=uuid.UUID(tenant_id), workflow_id=activity.info().workflow_id
            )

    def all(self) -> list:
        return [self.release]
