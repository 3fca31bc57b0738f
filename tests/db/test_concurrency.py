"""Many requests over many tenants through a small pool never see another tenant's rows."""

from __future__ import annotations

import asyncio
import random

from httpx import ASGITransport, AsyncClient

from tenantry.app import create_app


async def test_500_requests_over_20_tenants_through_4_connections(
    app, stack, settings, make_tenant, operator_headers
):
    tenants = [await make_tenant() for _ in range(20)]
    small_pool = settings.model_copy(update={"db_pool_size": 4, "db_max_overflow": 0})
    small_app = create_app(small_pool, database_url=stack.app_url)
    order = [tenants[i % 20] for i in range(500)]
    random.Random(7).shuffle(order)

    async with small_app.router.lifespan_context(small_app):
        assert small_app.state.db.engine.pool.size() == 4
        transport = ASGITransport(app=small_app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:

            async def read(tenant):
                response = await client.get(
                    f"/v1/admin/tenants/{tenant.slug}/audit", headers=operator_headers
                )
                assert response.status_code == 200, response.text
                return tenant, response.json()["items"]

            results = await asyncio.gather(*(read(t) for t in order))

    assert len(results) == 500
    for tenant, events in results:
        assert events, tenant.slug
        assert {e["target"] for e in events} == {f"tenant:{tenant.slug}"}
