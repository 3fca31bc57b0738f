"""What a deletion still owes outside the database, done by the relay (a chore): terminate the
tenant's workflows (found by the `TenantId` search attribute; its own namespace, if it had one,
is deleted), purge what their last activities wrote meanwhile, purge its audit log (as the owner role: the application may not) and drop
the tenant's own HNSW index, each in the tenant's cell. Its data key went with the purge, so what
Temporal keeps of its histories cannot be read.

A receipt is closed only by a pass that found nothing left to do, some seconds after the
deletion, since Temporal's visibility may list a just-started workflow a moment late.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import structlog
from sqlalchemy import func, select, update
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tenantry.audit import anchors
from tenantry.db.cells import admin_url_of
from tenantry.db.session import Database
from tenantry.keys.service import TenantKeys
from tenantry.knowledge.promotion import drop_index
from tenantry.tenants import lifecycle_events
from tenantry.tenants.models import TenantDeletion
from tenantry.tenants.namespaces import tenant_namespace
from tenantry.tenants.service import purge_rows
from tenantry.worker import namespaces
from tenantry.worker.namespaces import Namespaces

log = structlog.get_logger("tenantry.tenants")

SETTLE = timedelta(seconds=3)  # how late visibility may list a workflow after its start
LEASE = timedelta(minutes=5)


async def owner_url_of(db: Database, tenant_id: uuid.UUID, main_admin_url: str) -> str:
    """The administrative URL of the database the tenant's rows are in (its cell's)."""
    cell = await db.cell_of(tenant_id)
    return admin_url_of(cell, main_admin_url) if cell is not None else main_admin_url


class DeletionCleanup:
    def __init__(
        self, db: Database, client: Client, *, admin_url: str | None, keys: TenantKeys | None
    ) -> None:
        self.db = db
        self.client = client
        self.admin_url = admin_url
        self.keys = keys

    async def __call__(self) -> int:
        """Clean up every deletion that is due; how many were closed."""
        closed = 0
        while (receipt := await self._claim()) is not None:
            try:
                done = await self._clean(receipt)
            except Exception as error:  # Temporal down, say: the receipt waits and is tried again
                log.warning("deletion clean-up failed", tenant=receipt.slug, error=str(error)[:200])
                await self._retry_later(receipt, f"{type(error).__name__}: {error}")
                continue
            closed += done
        return closed

    async def _claim(self) -> TenantDeletion | None:
        """The next due receipt, leased to this relay for a while (others skip it)."""
        async with self.db.control() as session:
            receipt = await session.scalar(
                select(TenantDeletion)
                .where(
                    TenantDeletion.cleaned_at.is_(None),
                    TenantDeletion.cleanup_after <= func.now(),
                )
                .order_by(TenantDeletion.deleted_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if receipt is None:
                return None
            receipt.cleanup_after = func.now() + LEASE
            receipt.cleanup_attempts += 1
        return receipt

    async def _clean(self, receipt: TenantDeletion) -> int:
        if self.keys is not None:  # this process's workflows stop reading the tenant's payloads now
            self.keys.forget(receipt.tenant)
        terminated = await self._terminate(receipt.slug)
        async with self.db.tenant(receipt.tenant) as session:  # in its cell, wherever that is
            late = {
                t: n for t, n in (await purge_rows(session, tenant_id=receipt.tenant)).items() if n
            }
        dropped = False
        if self.admin_url is not None:
            admin_url = await owner_url_of(self.db, receipt.tenant, self.admin_url)
            dropped = await asyncio.to_thread(drop_index, admin_url, tenant_id=receipt.tenant)
            # The audit log is the owner role's to purge; the deletion signed its final head.
            events = await asyncio.to_thread(
                anchors.purge_deleted, admin_url, tenant_id=receipt.tenant
            )
            if events:
                late["audit_events"] = events
        settled = not terminated and not late
        closed = False
        async with self.db.control() as session:
            row = await session.get(TenantDeletion, receipt.tenant, with_for_update=True)
            row.workflows_terminated += terminated
            row.purged = {t: row.purged.get(t, 0) + late.get(t, 0) for t in {*row.purged, *late}}
            row.index_dropped = row.index_dropped or dropped
            row.cleanup_error = None
            if settled and row.deleted_at + SETTLE <= await session.scalar(select(func.now())):
                row.cleaned_at, closed = func.now(), True
                await lifecycle_events.record(session, action="purged")
            else:  # look once more, after visibility has caught up
                row.cleanup_after = func.now() + SETTLE
        log.info(
            "deletion clean-up",
            tenant=receipt.slug,
            terminated=terminated,
            late_rows=sum(late.values()),
        )
        return int(closed)

    async def _terminate(self, slug: str) -> int:
        """Its running workflows, in the platform's namespace and in its own, if it has one:
        that one is then deleted (Temporal removes its histories in the background)."""
        terminated = await self._terminate_in(self.client, slug)
        own = tenant_namespace(slug)
        try:
            terminated += await self._terminate_in(Namespaces(self.client).client(own), slug)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return terminated  # it never had one, or it is gone already
        await namespaces.delete(self.client, own)
        log.info("tenant namespace deleted", tenant=slug, namespace=own)
        return terminated

    async def _terminate_in(self, client: Client, slug: str) -> int:
        query = f'TenantId = "{slug}" AND ExecutionStatus = "Running"'
        terminated = 0
        async for execution in client.list_workflows(query):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            try:
                await handle.terminate(reason="tenant deleted")
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                continue
            terminated += 1
        return terminated

    async def _retry_later(self, receipt: TenantDeletion, error: str) -> None:
        async with self.db.control() as session:
            await session.execute(
                update(TenantDeletion)
                .where(TenantDeletion.tenant == receipt.tenant)
                .values(
                    cleanup_error=error[:1000],
                    cleanup_after=func.now()
                    + timedelta(seconds=min(300, 2**receipt.cleanup_attempts)),
                )
            )
