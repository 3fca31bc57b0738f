"""A probe workflow for the conventions tests: its activity reports the tenant it runs for."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="probe.current_tenant")
async def current_tenant_slug() -> str:
    from tenantry.tenancy.context import current_tenant

    return current_tenant().slug


@workflow.defn(name="Probe")
class Probe:
    @workflow.run
    async def run(self, _: str) -> str:
        return await workflow.execute_activity(
            "probe.current_tenant", start_to_close_timeout=timedelta(seconds=30), result_type=str
        )
