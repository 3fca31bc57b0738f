"""After a commit: one delivery workflow per recorded delivery, on the tenant's queue."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from tenantry.events.types import DeliveryInput
from tenantry.tenancy.context import TenantRef
from tenantry.worker.queues import start_tenant_workflow


async def dispatch(
    client: Client,
    *,
    tenant: TenantRef,
    delivery_ids: list[uuid.UUID],
    task_queue: str,
    max_attempts: int,
    first_retry_seconds: float = 1.0,
) -> None:
    for delivery_id in delivery_ids:
        await start_tenant_workflow(
            client,
            "DeliverWebhook",
            DeliveryInput(str(tenant.id), str(delivery_id), max_attempts, first_retry_seconds),
            tenant=tenant,
            kind="webhook",
            object_id=str(delivery_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,  # redelivery reuses the id
        )
