"""After an incident's transaction commits: its workflow, and the deliveries of its events."""

from __future__ import annotations

import uuid

from fastapi import Request

from tenantry.events.dispatch import dispatch
from tenantry.incidents.models import Incident
from tenantry.incidents.types import IncidentInput
from tenantry.tenancy.context import TenantRef
from tenantry.worker.queues import start_tenant_workflow, task_queue_for


async def start_incident(
    request: Request, tenant: TenantRef, incident: Incident, deliveries: list[uuid.UUID]
) -> None:
    from temporalio.common import WorkflowIDReusePolicy

    from tenantry.api_support import policy_of

    policy = await policy_of(request, tenant.id)
    queue = task_queue_for(tenant.slug, policy.config, request.app.state.settings.pool_task_queue)
    client = request.app.state.temporal
    await start_tenant_workflow(
        client,
        "IncidentWorkflow",
        IncidentInput(str(tenant.id), tenant.slug, str(incident.id), incident.number),
        tenant=tenant,
        kind="incident",
        object_id=str(incident.number),
        task_queue=queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,  # a reopened incident runs again
    )
    await dispatch(
        client,
        tenant=tenant,
        delivery_ids=deliveries,
        task_queue=queue,
        max_attempts=policy.config["webhooks"]["max_attempts"],
    )


def workflow_handle(request: Request, tenant: TenantRef, handle: str):
    number = handle.removeprefix("INC-")
    return request.app.state.temporal.get_workflow_handle(f"{tenant.slug}/incident/{number}")
