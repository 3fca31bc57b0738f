"""Tenant lifecycle changes are counted in PostgreSQL with the change, so a change made by a CLI
process that exits at once shows in an API process's /metrics, parallel changes all count, and a
change rolled back does not."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.tenants import service as tenants

NAME = "tenantry_tenant_lifecycle_events_total"


async def _counted(app, client, action: str) -> float:
    app.state.metrics_state.read_at = float("-inf")  # this scrape reads PostgreSQL again
    scrape = (await client.get("/metrics")).text
    return next(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == NAME and sample.labels == {"action": action}
    )


async def test_a_cli_suspend_shows_in_the_api_processes_metrics(app, client, make_tenant):
    tenant = await make_tenant()
    before = await _counted(app, client, "suspended")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tenantry.cli", "tenants", "suspend", tenant.slug],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert await _counted(app, client, "suspended") == before + 1


async def test_parallel_changes_all_count_and_a_rollback_does_not(app, client, db, make_tenant):
    made = [await make_tenant() for _ in range(8)]
    before = await _counted(app, client, "suspended")

    async def suspend(slug: str) -> None:
        async with db.control() as session:
            await tenants.suspend(session, slug=slug, actor="test")

    await asyncio.gather(*(suspend(tenant.slug) for tenant in made))
    assert await _counted(app, client, "suspended") == before + len(made)

    class Abandoned(Exception):
        pass

    resumed = await _counted(app, client, "resumed")
    with pytest.raises(Abandoned):
        async with db.control() as session:
            await tenants.resume(session, slug=made[0].slug, actor="test")
            raise Abandoned  # the transaction rolls back, the count with it
    assert await _counted(app, client, "resumed") == resumed
    async with db.control() as session:
        await tenants.resume(session, slug=made[0].slug, actor="test")
    assert await _counted(app, client, "resumed") == resumed + 1
