"""Tenant lifecycle: the one service behind both the admin API and the CLI.

Functions take a session and never commit, except `delete`, which is two transactions by design
(mark `deleting`, then purge and mark `deleted`) so that a failed purge can be repeated.

One lifecycle in every store: suspending holds the tenant's outbox and pauses its workflows'
background steps (they wait for a `resume` signal, written when it is resumed) and its backup
schedules (each change of tier or status owes Temporal a schedule sync); deleting purges
its rows (its data key with them: its Temporal payloads become unreadable) and leaves a receipt
whose clean-up (terminate its workflows, drop its HNSW index) the relay carries out.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import anchors
from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.catalog import tenant_tables
from tenantry.db.paging import Keyset, page
from tenantry.db.session import Database, set_tenant
from tenantry.errors import Conflict, NotFound
from tenantry.outbox import service as outbox
from tenantry.settings import Settings
from tenantry.tenancy.context import TenantRef
from tenantry.tenants import cell_changes, deletion, lifecycle_events
from tenantry.tenants.models import Tenant
from tenantry.tenants.namespaces import namespace_for
from tenantry.tenants.schemas import TenantCreate, TenantUpdate

TENANTS = Keyset("tenants", (Tenant.slug, Tenant.id))


class TenantGone(Conflict):
    code, title = "tenant-deleted", "Tenant deleted"


def snapshot(tenant: Tenant) -> dict[str, Any]:
    return {"slug": tenant.slug, "name": tenant.name, "tier": tenant.tier, "status": tenant.status}


def ref(tenant: Tenant) -> TenantRef:
    return TenantRef(id=tenant.id, slug=tenant.slug, tier=tenant.tier)


LIFECYCLE_ACTIONS = {"tenant.deleting": "deleted"}


async def get(session: AsyncSession, *, slug: str, for_update: bool = False) -> Tenant:
    if "\x00" in slug:  # no slug holds one, and PostgreSQL refuses it in a query (a 500)
        raise NotFound("No tenant by that name.")
    query = select(Tenant).where(Tenant.slug == slug)
    if for_update:
        # Every tenant-owned insert holds a key-share lock on this row through its foreign key:
        # FOR NO KEY UPDATE does not conflict with it (FOR UPDATE would, and block or deadlock).
        query = query.with_for_update(key_share=True)
    tenant = await session.scalar(query)
    if tenant is None:
        raise NotFound(f"No tenant '{slug}'.")
    return tenant


async def get_by_id(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def create(
    session: AsyncSession, *, data: TenantCreate, actor: str, settings: Settings
) -> Tenant:
    taken = await session.scalar(select(Tenant.id).where(Tenant.slug == data.slug))
    if taken is not None:
        raise Conflict(f"A tenant with slug '{data.slug}' already exists.", code="tenant-exists")
    tenant = Tenant(
        id=uuid.uuid4(),
        slug=data.slug,
        name=data.name,
        tier=data.tier,
        status="active",
        **namespace_for(data.slug, settings),
    )
    session.add(tenant)
    await session.flush()
    await _audit(session, tenant, actor, "tenant.created", None)
    await outbox.sync_schedules(session, tenant_id=tenant.id)
    return tenant


async def list_tenants(
    session: AsyncSession,
    *,
    status: str | None = None,
    tier: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Tenant], str | None]:
    query = select(Tenant)
    query = (
        query.where(Tenant.status == status) if status else query.where(Tenant.status != "deleted")
    )
    if tier:
        query = query.where(Tenant.tier == tier)
    return await page(session, query, keyset=TENANTS, cursor=cursor, limit=limit)


async def update(session: AsyncSession, *, slug: str, data: TenantUpdate, actor: str) -> Tenant:
    tenant = await get_live(session, slug=slug)
    before = snapshot(tenant)
    if data.name is not None:
        tenant.name = data.name
    if data.tier is not None:
        tenant.tier = data.tier
    if snapshot(tenant) != before:
        tenant.updated_at = utcnow()
        await _audit(session, tenant, actor, "tenant.updated", before)
    if tenant.tier != before["tier"]:  # its backup cadences are its tier's
        await outbox.sync_schedules(session, tenant_id=tenant.id)
    return tenant


async def suspend(session: AsyncSession, *, slug: str, actor: str) -> Tenant:
    return await _set_status(session, slug, "suspended", actor)


async def resume(session: AsyncSession, *, slug: str, actor: str) -> Tenant:
    return await _set_status(session, slug, "active", actor)


async def delete(db: Database, *, slug: str, actor: str) -> tuple[Tenant, dict[str, int]]:
    """Mark the tenant `deleting`, then purge all its rows and mark it `deleted`; repeatable."""
    async with db.control() as session:
        tenant = await get(session, slug=slug, for_update=True)
        if tenant.status == "deleted":
            return tenant, {}
        if tenant.status != "deleting":
            before = snapshot(tenant)
            tenant.status = "deleting"
            tenant.updated_at = utcnow()
            await _audit(session, tenant, actor, "tenant.deleting", before)
            await outbox.sync_schedules(session, tenant_id=tenant.id)  # no more backups
        elsewhere = cell_changes.elsewhere(session, tenant)
    if elsewhere:
        return await _delete_in_cell(db, tenant, actor)
    async with db.control() as session:
        tenant = await get(session, slug=slug, for_update=True)
        if tenant.status != "deleting":
            return tenant, {}
        await set_tenant(session, tenant.id)  # the chain's head is the tenant's row, under RLS
        head_seq, head_hash = await audit.head(session, tenant_id=tenant.id)
        await anchors.sign(session)  # the final head, signed: its events go with the owner's purge
        purged = await purge_rows(session, tenant_id=tenant.id)
        await _mark_deleted(session, tenant, actor=actor, head=(head_seq, head_hash), purged=purged)
    return tenant, purged


async def _delete_in_cell(db: Database, tenant: Tenant, actor: str) -> tuple[Tenant, dict]:
    """The second step for a tenant placed in another cell: its rows are purged there and its
    receipt left here. The receipt commits first, inside the cell's transaction: should the
    purge then fail to commit, the receipt stands and the clean-up's late purge removes what
    is left (it purges in the tenant's cell too)."""
    await cell_changes.apply(db, tenant_id=tenant.id)  # `tenant.deleting` is in its chain first
    async with db.tenant(tenant.id) as cell:
        head = await audit.head(cell, tenant_id=tenant.id)
        await anchors.sign(cell)  # the final head, signed: its events go with the owner's purge
        purged = await purge_rows(cell, tenant_id=tenant.id)
        async with db.control() as session:
            tenant = await get(session, slug=tenant.slug, for_update=True)
            if tenant.status != "deleting":  # another deletion finished first
                return tenant, {}
            await _mark_deleted(session, tenant, actor=actor, head=head, purged=purged)
        # The cell's copy says `deleted` too: the owner's purge of its audit log checks it there.
        await cell_changes.refresh_copy(db, cell, tenant.id)
    return tenant, purged


async def _mark_deleted(
    session: AsyncSession, tenant: Tenant, *, actor: str, head: tuple, purged: dict[str, int]
) -> None:
    """The tenant `deleted`, and the receipt of what went, on the control plane."""
    tenant.status = "deleted"
    tenant.deleted_at = tenant.updated_at = utcnow()
    await deletion.leave_receipt(session, tenant=tenant, actor=actor, head=head, purged=purged)


async def purge_rows(session: AsyncSession, *, tenant_id: uuid.UUID) -> dict[str, int]:
    """Delete every row of the tenant in every tenant-owned table, as the catalog lists them,
    but its audit log: the application may not remove that, the owner role purges it once the
    deletion is done (`audit.anchors.purge_deleted`)."""
    await set_tenant(session, tenant_id)
    purged: dict[str, int] = {}
    for table in await tenant_tables(session):
        if table in audit.OWNER_PURGED:
            continue
        result = await session.execute(
            text(f'DELETE FROM "{table}" WHERE tenant_id = :tid'), {"tid": tenant_id}
        )
        purged[table] = result.rowcount
    return purged


async def get_live(session: AsyncSession, *, slug: str) -> Tenant:
    """The tenant, locked, refusing one that is being deleted or was."""
    tenant = await get(session, slug=slug, for_update=True)
    if tenant.status in ("deleting", "deleted"):
        raise TenantGone(f"Tenant '{slug}' is {tenant.status}.")
    return tenant


async def _set_status(session: AsyncSession, slug: str, status: str, actor: str) -> Tenant:
    tenant = await get_live(session, slug=slug)
    if tenant.status == status:
        return tenant
    before = snapshot(tenant)
    tenant.status = status
    tenant.suspended_at = utcnow() if status == "suspended" else None
    tenant.updated_at = utcnow()
    action = "tenant.suspended" if status == "suspended" else "tenant.resumed"
    await _audit(session, tenant, actor, action, before)
    await outbox.sync_schedules(session, tenant_id=tenant.id)  # paused while suspended
    if status == "active":
        await cell_changes.resume_paused(session, tenant)
    return tenant


async def _audit(
    session: AsyncSession, tenant: Tenant, actor: str, action: str, before: dict | None
) -> None:
    await cell_changes.audit_event(
        session,
        tenant,
        actor=actor,
        action=action,
        target=f"tenant:{tenant.slug}",
        before=before,
        after=snapshot(tenant),
    )
    # Counted here, where the API, the CLI and workflows all pass, with the change itself.
    await lifecycle_events.record(
        session, action=LIFECYCLE_ACTIONS.get(action, action.removeprefix("tenant."))
    )
