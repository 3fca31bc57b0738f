"""The local Temporal's web UI (as `tenantry run` starts it: loopback, offline), opened in headless
Chromium at the banner's tenant-filtered link, lists that tenant's workflows and not another's."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tenantry.worker.devserver import TemporalDevServer, tenant_workflows_url
from tenantry.worker.queues import TENANT_ID
from tests.browser import chromium
from tests.servers import free_port


async def test_the_ui_link_shows_one_tenants_workflows(tmp_path):
    server = TemporalDevServer(tmp_path / "temporal", port=free_port(), ui_port=free_port())
    try:
        client = await Client.connect(await server.start())
        ids = {}
        for tenant in ("chogar", "acme"):
            ids[tenant] = f"{tenant}/ui-check/{uuid.uuid4().hex[:8]}"
            # No worker needed: a started workflow is listed (Running) with its attributes.
            await client.start_workflow(
                "ui.check",
                id=ids[tenant],
                task_queue="ui-check",
                search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, tenant)]),
            )
        link = tenant_workflows_url(server.ui_url, "chogar")
        assert link.endswith("/namespaces/default/workflows?query=TenantId%3D%22chogar%22")
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(link)
            # Waits (bounded) until the list shows the tenant's workflow.
            await page.get_by_text(ids["chogar"]).first.wait_for(timeout=60_000)
            shown = await page.content()
            # Unfiltered, the other tenant's workflow is there: its absence above is the filter.
            await page.goto(f"{server.ui_url}/namespaces/default/workflows")
            await page.get_by_text(ids["acme"]).first.wait_for(timeout=60_000)
        assert ids["chogar"] in shown
        assert ids["acme"] not in shown
    finally:
        server.stop()
