"""Webhook endpoints, and events recorded as one delivery per subscribed endpoint."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.db.paging import Keyset, page
from tenantry.errors import NotFound
from tenantry.events.dispatch import dispatch
from tenantry.events.models import WebhookDelivery, WebhookEndpoint
from tenantry.events.schemas import EndpointCreate, EndpointUpdate
from tenantry.events.signing import new_secret

ENDPOINTS = Keyset("webhooks", (WebhookEndpoint.created_at, WebhookEndpoint.id))
DELIVERIES = Keyset("deliveries", (WebhookDelivery.created_at, WebhookDelivery.id), descending=True)


def audited_target(url: str) -> str:
    """What the audit log keeps of a webhook's URL: its host and port. The path, the query and
    any user info often carry a secret (a token the receiver checks), and the log is append-only."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}" if parts.port else str(host)


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "host": audited_target(endpoint.url),
        "events": endpoint.events,
        "active": endpoint.active,
    }


async def create_endpoint(
    session: AsyncSession, *, tenant_id: uuid.UUID, data: EndpointCreate, actor: str
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        url=data.url,
        secret=new_secret(),
        events=sorted(set(data.events)),
        description=data.description,
        active=True,
    )
    session.add(endpoint)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.created",
        target=f"webhook:{endpoint.id}",
        after=_audited(endpoint),
    )
    return endpoint


async def list_endpoints(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpoint], str | None]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
    return await page(session, query, keyset=ENDPOINTS, cursor=cursor, limit=limit)


async def get_endpoint(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    for_delete: bool = False,
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
    )
    endpoint = await session.scalar(query.with_for_update() if for_delete else query)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: EndpointUpdate,
    actor: str,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, tenant_id=tenant_id, endpoint_id=endpoint_id)
    before = _audited(endpoint)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(endpoint, field, sorted(set(value)) if field == "events" else value)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.updated",
        target=f"webhook:{endpoint.id}",
        before=before,
        after=_audited(endpoint),
    )
    return endpoint


async def delete_endpoint(
    session: AsyncSession, *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, actor: str
) -> None:
    # Locked before the audit: the delete must not wait for a delivery's insert (which holds a
    # key-share lock on the endpoint) while this transaction holds the audit chain.
    endpoint = await get_endpoint(
        session, tenant_id=tenant_id, endpoint_id=endpoint_id, for_delete=True
    )
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="webhook.deleted",
        target=f"webhook:{endpoint.id}",
        before=_audited(endpoint),
    )
    await session.delete(endpoint)


async def record_event(
    session: AsyncSession, *, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]
) -> list[uuid.UUID]:
    """One pending delivery per active endpoint that listens to `event_type`, each sent by a
    delivery workflow started through the outbox; returns their ids."""
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}
    endpoints = await session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.active.is_(True)
        )
    )
    ids = []
    for endpoint in endpoints:
        if "*" in endpoint.events or event_type in endpoint.events:
            delivery = WebhookDelivery(
                tenant_id=tenant_id,
                id=uuid.uuid4(),
                endpoint_id=endpoint.id,
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                status="pending",
                attempts=0,
            )
            session.add(delivery)
            ids.append(delivery.id)
    await session.flush()
    await dispatch(session, tenant_id=tenant_id, delivery_ids=ids)
    return ids


async def list_deliveries(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookDelivery], str | None]:
    await get_endpoint(session, tenant_id=tenant_id, endpoint_id=endpoint_id)
    query = select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.endpoint_id == endpoint_id
    )
    return await page(session, query, keyset=DELIVERIES, cursor=cursor, limit=limit)


async def reset_for_redelivery(
    session: AsyncSession, *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.id == delivery_id,
        )
    )
    if delivery is None:
        raise NotFound("No such delivery.")
    delivery.status, delivery.last_error = "pending", None
    await dispatch(session, tenant_id=tenant_id, delivery_ids=[delivery.id])
    return delivery
