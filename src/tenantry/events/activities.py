"""Sending one webhook: check the target, sign as Standard Webhooks says, POST, log the attempt."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from tenantry.db.base import utcnow
from tenantry.db.session import Database
from tenantry.egress.gate import EgressBusy, EgressGate
from tenantry.egress.http import exchange, outbound_client
from tenantry.egress.policy import EgressError, EgressPolicy, EgressRefused
from tenantry.events import signing
from tenantry.events.models import WebhookDelivery, WebhookEndpoint
from tenantry.events.types import DeliveryInput, GiveUpInput
from tenantry.limits.backends import MemoryConcurrency
from tenantry.observability import domain as metrics
from tenantry.outbox import service as outbox
from tenantry.settings import Settings


class EventActivities:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.policy = EgressPolicy(settings.egress_allowlist)
        # Deliveries in flight per tenant in this worker: a receiver that never answers holds
        # at most this many of the worker's activity slots.
        self.gate = EgressGate(MemoryConcurrency(), per_tenant=settings.egress_per_tenant)

    async def _load(self, tenant_id: uuid.UUID, delivery_id: uuid.UUID):
        async with self.db.tenant(tenant_id) as session:
            row = (
                await session.execute(
                    select(WebhookDelivery, WebhookEndpoint)
                    .join(
                        WebhookEndpoint,
                        (WebhookEndpoint.tenant_id == WebhookDelivery.tenant_id)
                        & (WebhookEndpoint.id == WebhookDelivery.endpoint_id),
                    )
                    .where(
                        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id
                    )
                )
            ).first()
        return row

    @activity.defn(name="events.deliver")
    async def deliver(self, job: DeliveryInput) -> int:
        tenant_id, delivery_id = uuid.UUID(job.tenant_id), uuid.UUID(job.delivery_id)
        row = await self._load(tenant_id, delivery_id)
        if row is None:
            raise ApplicationError(
                "the delivery or its endpoint was deleted", type="DeliveryGone", non_retryable=True
            )
        delivery, endpoint = row
        if delivery.status == "delivered":
            return delivery.last_status_code or 200
        if await self._paused(tenant_id):
            raise ApplicationError(
                "the tenant is suspended", type="TenantSuspended", non_retryable=True
            )
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = signing.headers(endpoint.secret, f"msg_{delivery.id.hex}", int(time.time()), body)
        try:
            reply = await self._post(tenant_id, endpoint.url, body, headers)
        except EgressRefused as error:
            await self._log(tenant_id, delivery_id, None, str(error)[:500], outcome="forbidden")
            raise ApplicationError(
                str(error), type="ForbiddenTarget", non_retryable=True
            ) from error
        except EgressBusy as error:
            raise ApplicationError(str(error), type="EgressBusy") from error
        except EgressError as error:
            await self._log(tenant_id, delivery_id, None, str(error)[:500], outcome="unreachable")
            raise ApplicationError(f"could not reach the endpoint: {error}") from error
        if reply.ok:
            await self._log(tenant_id, delivery_id, reply.status, None, outcome="delivered")
            return reply.status
        # A redirect is not followed: the receiver must answer at the URL it was given.
        await self._log(
            tenant_id, delivery_id, reply.status, f"HTTP {reply.status}", outcome="http_error"
        )
        raise ApplicationError(f"the endpoint answered HTTP {reply.status}")

    async def _post(self, tenant_id: uuid.UUID, url: str, body: bytes, headers: dict):
        """No database connection is held here; the answer's body is never read."""
        timeout = self.settings.webhook_timeout_seconds
        async with self.gate.slot(tenant_id), outbound_client(self.policy, timeout=timeout) as http:
            return await exchange(
                http, "POST", url, content=body, headers=headers, max_bytes=0, deadline=timeout
            )

    async def _paused(self, tenant_id: uuid.UUID) -> bool:
        async with self.db.tenant(tenant_id) as session:
            return await outbox.pause_if_suspended(
                session, tenant_id=tenant_id, workflow_id=activity.info().workflow_id
            )

    @activity.defn(name="events.give_up")
    async def give_up(self, job: GiveUpInput) -> None:
        async with self.db.tenant(uuid.UUID(job.tenant_id)) as session:
            delivery = await session.scalar(
                select(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == uuid.UUID(job.tenant_id),
                    WebhookDelivery.id == uuid.UUID(job.delivery_id),
                )
            )
            if delivery is not None and delivery.status != "delivered":
                delivery.status, delivery.last_error = "failed", job.reason[:1000]
                metrics.webhook_attempt(
                    await metrics.tenant_named(session, delivery.tenant_id), outcome="gave_up"
                )

    async def _log(self, tenant_id, delivery_id, status_code, error, *, outcome: str) -> None:
        async with self.db.tenant(tenant_id) as session:
            delivery = await session.scalar(
                select(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id
                )
            )
            if delivery is None:
                return
            # Counted here, not from Temporal's attempt, which starts again after a suspension.
            delivery.attempts += 1
            delivery.last_status_code, delivery.last_error = status_code, error
            metrics.webhook_attempt(await metrics.tenant_named(session, tenant_id), outcome=outcome)
            if outcome == "delivered":
                delivery.status, delivery.delivered_at = "delivered", utcnow()

    def all(self) -> list:
        return [self.deliver, self.give_up]
