"""What a placement gives a tenant's workers: a move into a silo cell turns the tenant's
`features.dedicated_workers` on (its workflows go to `tenant-{slug}-jobs`, which the worker
process serves, see `runtime/dedicated_workers.py`), a move into a pool cell (the main one
included) turns it off. The placement decides: an operator's earlier setting gives way to it,
and an operator may set it again afterwards (`tenantry config set SLUG
features.dedicated_workers=…`).

The change is a configuration version like an operator's (author `move:{id}`), audited, written
in the tenant's new cell in the same transaction as the move's `tenant.moved` record; a version
is written only when the effective value differs, so a retried step writes nothing twice.
Workflows already running stay on the queue they started on (Temporal fixed it at their start):
the pool queue is always served, and a dedicated queue keeps its worker while it has any.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.config import service as config_service
from tenantry.settings import Settings
from tenantry.tenants.cells import SILO
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import effective_limits

FEATURE = "features.dedicated_workers"


@dataclass(frozen=True)
class Workers:
    dedicated: bool
    config_version: int | None  # the version the move wrote; None when nothing had to change


async def place_workers(
    session: AsyncSession,
    *,
    tenant: Tenant,
    kind: str,
    move_id: uuid.UUID,
    actor: str,
    settings: Settings,
) -> Workers:
    """In a transaction of the tenant in its new cell: its dedicated workers as `kind` says."""
    wanted = kind == SILO
    current = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
    if current.config["features"]["dedicated_workers"] == wanted:
        return Workers(wanted, None)
    row = await config_service.patch_tenant(
        session,
        tenant_id=tenant.id,
        tier=tenant.tier,
        cache_prefix=tenant.cache_prefix,
        patch={"features": {"dedicated_workers": wanted}},
        author=f"move:{move_id}",
        settings=settings,
        limits=effective_limits(tenant.tier, tenant.limit_overrides),
        by_operator=True,
    )
    await audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="config.changed",
        target=f"tenant:{tenant.slug}",
        before={FEATURE: not wanted, "version": current.tenant_version},
        after={FEATURE: wanted, "version": row.version, "move": str(move_id)},
    )
    return Workers(wanted, row.version)
