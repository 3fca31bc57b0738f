"""What a process reads of every cell, not only of the main one: the configuration cache hears
a change made in another cell, and a scrape's per-tenant gauges and /health/detailed's outbox
figures count the tenants placed elsewhere."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import delete

from tenantry.config import service as config_service
from tenantry.db.base import utcnow
from tenantry.observability.state import read_counts
from tenantry.outbox.models import OutboxMessage
from tenantry.tenants.tiers import effective_limits
from tests.cells.test_routing import moved
from tests.conftest import bearer, login

BOUND = 30  # seconds: a bound on a wait for an event, never a measure


async def test_a_config_change_in_another_cell_reaches_every_process_cache(
    client, app, db, settings, cell_b, make_tenant, make_user, monkeypatch
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await moved(db, settings, tenant, cell_b)
    listener = app.state.config_listener
    await asyncio.wait_for(listener.cells_ready.setdefault(cell_b, asyncio.Event()).wait(), BOUND)
    shown = await client.get("/v1/config", headers=headers)  # now in this process's cache
    assert shown.json()["config"]["branding"]["primary_color"] != "#123456"

    cache = app.state.config_cache
    heard = asyncio.Event()
    invalidate = cache.invalidate

    def hearing(prefix: str) -> None:
        invalidate(prefix)
        if prefix == tenant.cache_prefix:
            heard.set()

    monkeypatch.setattr(cache, "invalidate", hearing)
    # Another process (the CLI, another API replica) changes it, in the tenant's cell.
    async with db.tenant(tenant.id) as session:
        await config_service.patch_tenant(
            session,
            tenant_id=tenant.id,
            tier=tenant.tier,
            cache_prefix=tenant.cache_prefix,
            patch={"branding": {"primary_color": "#123456"}},
            author="test",
            settings=settings,
            limits=effective_limits(tenant.tier, tenant.limit_overrides),
            by_operator=True,
        )
    await asyncio.wait_for(heard.wait(), BOUND)
    shown = await client.get("/v1/config", headers=headers)
    assert shown.json()["config"]["branding"]["primary_color"] == "#123456"


async def test_gauges_and_the_outbox_health_count_tenants_in_another_cell(
    client, app, db, settings, cell_b, make_tenant
):
    tenant = await make_tenant(tier="enterprise")  # named in the tenant label
    await moved(db, settings, tenant, cell_b)
    now = utcnow()
    messages = {"queued": "workflows_in_flight", "late": None}
    async with db.tenant(tenant.id) as session:
        for name, waiting_for in messages.items():
            session.add(
                OutboxMessage(
                    tenant_id=tenant.id,
                    kind="start",
                    workflow_id=f"{tenant.slug}/gauges/{name}",
                    workflow_type="Nothing",
                    arg={},
                    created_at=now - timedelta(hours=50),
                    available_at=now + timedelta(hours=1),  # no relay takes them meanwhile
                    waiting_for=waiting_for,
                )
            )
    try:
        counts = await read_counts(db)
        assert counts["tenantry_workflows_queued"][(tenant.slug,)] == 1
        assert counts["tenantry_outbox_oldest_pending_seconds"][()] >= 50 * 3600

        app.state.metrics_state.read_at = float("-inf")
        found = (await client.get("/health/detailed")).json()["components"]
        outbox = next(c for c in found if c["name"] == "outbox")
        assert outbox["pending"] >= 2 and outbox["oldest_pending_seconds"] >= 50 * 3600
    finally:
        async with db.tenant(tenant.id) as session:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id))
