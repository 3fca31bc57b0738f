"""The receipt a deletion leaves: the final head of the tenant's audit chain, the rows purged per
table, who deleted it and when. `audit verify` on a deleted tenant reports it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.outbox import service as outbox
from tenantry.tenants.models import Tenant, TenantDeletion


async def leave_receipt(
    session: AsyncSession,
    *,
    tenant: Tenant,
    actor: str,
    head: tuple[int, str],
    purged: dict[str, int],
) -> TenantDeletion:
    receipt = TenantDeletion(
        tenant=tenant.id,
        slug=tenant.slug,
        actor=actor,
        deleted_at=utcnow(),
        audit_head_seq=head[0],
        audit_head_hash=head[1],
        purged=purged,
        key_destroyed=purged.get("tenant_keys", 0) > 0,
    )
    session.add(receipt)
    await session.flush()
    # The clean-up outside the database is owed from this commit on: tell the relay now.
    await outbox.wake(session, tenant_id=outbox.CHORES)
    return receipt


async def receipt_of(session: AsyncSession, *, tenant_id: uuid.UUID) -> TenantDeletion | None:
    return await session.scalar(select(TenantDeletion).where(TenantDeletion.tenant == tenant_id))
