"""A tier template changed on the control plane reaches the tenants of that tier in another
cell: the relay's chore copies the versions a cell lacks into it."""

from __future__ import annotations

from tenantry.config import service as config_service
from tenantry.config.cell_tiers import SyncCellTiers
from tests.cells.test_routing import moved


async def test_a_tier_change_reaches_a_tenant_in_another_cell(db, settings, cell_b, make_tenant):
    tenant = await make_tenant(tier="free")
    await moved(db, settings, tenant, cell_b)
    sync = SyncCellTiers(db)
    await sync()  # the cell holds every version the control plane has
    async with db.control() as session:
        start, _ = await config_service.tier_document(session, "free")
        await config_service.patch_tier(
            session,
            tier="free",
            patch={"branding": {"accent_color": "#abcdef"}},
            author="test",
            settings=settings,
        )
    try:
        # The session worker's relay runs the same chore: either may copy it, into every cell.
        await sync()
        assert await sync() == 0  # nothing left to copy
        async with db.tenant(tenant.id) as session:
            eff = await config_service.effective(session, tenant_id=tenant.id, tier="free")
        assert eff.config["branding"]["accent_color"] == "#abcdef"
        assert eff.sources["branding.accent_color"] == "tier"
        assert eff.tier_version == start + 1
    finally:
        async with db.control() as session:
            await config_service.rollback_tier(
                session, tier="free", to_version=start, author="test", settings=settings
            )
        await sync()
