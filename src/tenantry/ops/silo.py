"""What a placement gives a tenant's workers: a move into a silo cell turns the tenant's
`features.dedicated_workers` on (its workflows go to `tenant-{slug}-jobs`, which the worker
process serves, see `runtime/dedicated_workers.py`), and `features.own_namespace` too where the
operator asked (its workflows then run in the Temporal namespace `tenant-{slug}`); a move into a
pool cell (the main one included) turns both off. The placement decides: an operator's earlier
setting gives way to it, and an operator may set it again afterwards (`tenantry config set SLUG
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
NAMESPACE = "features.own_namespace"


@dataclass(frozen=True)
class Workers:
    dedicated: bool
    own_namespace: bool
    config_version: int | None  # the version the move wrote; None when nothing had to change


async def place_workers(
    session: AsyncSession,
    *,
    tenant: Tenant,
    kind: str,
    move_id: uuid.UUID,
    actor: str,
    settings: Settings,
    namespace: bool = False,
) -> Workers:
    """In a transaction of the tenant in its new cell: its dedicated workers as `kind` says, and
    its own namespace on where the move asked for one (off in a pool cell: the pool's workers
    poll the platform's namespace only; otherwise as the operator left it)."""
    wanted = kind == SILO
    current = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
    features = current.config["features"]
    own = (features["own_namespace"] or namespace) if wanted else False
    patch = {
        name: value
        for name, value in (("dedicated_workers", wanted), ("own_namespace", own))
        if features[name] != value
    }
    if not patch:
        return Workers(wanted, own, None)
    row = await config_service.patch_tenant(
        session,
        tenant_id=tenant.id,
        tier=tenant.tier,
        cache_prefix=tenant.cache_prefix,
        patch={"features": patch},
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
        before={
            FEATURE: features["dedicated_workers"],
            NAMESPACE: features["own_namespace"],
            "version": current.tenant_version,
        },
        after={FEATURE: wanted, NAMESPACE: own, "version": row.version, "move": str(move_id)},
    )
    return Workers(wanted, own, row.version)
