"""In the transaction that records deliveries: one delivery workflow per delivery, through the
outbox, so a delivery is never recorded without being sent (nor sent without being recorded)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import service as config_service
from tenantry.events.types import DeliveryInput
from tenantry.outbox import service as outbox
from tenantry.tenants.models import Tenant
from tenantry.worker.queues import workflow_id


def delivery_workflow_id(tenant_slug: str, delivery_id: uuid.UUID | str) -> str:
    return workflow_id(tenant_slug, "webhook", str(delivery_id))


async def dispatch(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    delivery_ids: list[uuid.UUID],
    first_retry_seconds: float = 1.0,
) -> None:
    if not delivery_ids:
        return
    tenant = await session.get(Tenant, tenant_id)
    config = (await config_service.effective(session, tenant_id=tenant_id, tier=tenant.tier)).config
    for delivery_id in delivery_ids:
        await outbox.start(
            session,
            tenant_id=tenant_id,
            workflow_type="DeliverWebhook",
            workflow_id=delivery_workflow_id(tenant.slug, delivery_id),
            arg=DeliveryInput(
                str(tenant_id),
                str(delivery_id),
                config["webhooks"]["max_attempts"],
                first_retry_seconds,
            ),
            reuse="allow_duplicate",  # a redelivery runs the same id again
        )
