"""The relay: delivers committed outbox messages to Temporal, in the worker process.

It is woken by NOTIFY (a trigger names the tenant of every new message and of every freed
workflow slot) and sweeps every `outbox_sweep_seconds` as a safety net, and at once whenever its
LISTEN connection (re)opens. It claims a tenant's due messages with `FOR UPDATE SKIP LOCKED`, so
several relays share the work without taking the same message, and reads them in that tenant's
own transaction: the outbox stays under forced RLS like every tenant table. The sweep learns which
tenants have due messages from `outbox_due_tenants()`, a plain (invoker's rights) function that
sets each live tenant in turn and asks whether it has one.

Tenants are served round-robin, one batch each, so one tenant's backlog does not hold up another.
Each tenant's work goes to its task queue and Temporal namespace as its configuration says now
(the platform's, or its own: `worker/namespaces.py`).
A message Temporal refuses is retried with capped exponential backoff; when Temporal cannot be
reached at all, every delivery waits the same backoff (no point hammering a server that is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.orm import aliased
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from tenantry.config import service as config_service
from tenantry.config.service import CHANNEL as CONFIG_CHANNEL
from tenantry.db.session import Database
from tenantry.limits.policy import build_policy
from tenantry.observability.metrics import (
    OUTBOX_DELAY,
    OUTBOX_DELIVERED,
    OUTBOX_RETRIES,
    OUTBOX_WAITING,
)
from tenantry.observability.tenant_labels import tenant_label
from tenantry.outbox import slots
from tenantry.outbox.delivery import TemporalUnavailable, deliver
from tenantry.outbox.models import OutboxMessage
from tenantry.outbox.service import CHANNEL, CHORES
from tenantry.runtime.stopping import being_cancelled, cancel_within
from tenantry.settings import Settings
from tenantry.tenancy.context import TenantRef
from tenantry.tenants.models import Tenant
from tenantry.tenants.namespaces import has_own_namespace
from tenantry.worker.namespaces import Namespaces, first_found
from tenantry.worker.queues import task_queue_for

log = structlog.get_logger("tenantry.outbox")

BATCH = 32
SEND_AT_ONCE = 8  # Temporal calls in flight for one batch
PLACEMENT_SECONDS = 30.0  # at most, between two reads of a tenant's queue and limit
RECONCILE_SECONDS = 10.0
Chore = Callable[[], Awaitable[Any]]


def backoff(attempts: int, ceiling: float) -> float:
    return min(ceiling, 0.5 * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)


@dataclass
class _Batch:
    """One round of one tenant: its claimed messages, and how the round went."""

    tenant: TenantRef
    queue: str
    clients: list[Client]  # the namespaces its workflows may be in, where starts go first
    limit: int
    full: bool  # every workflows_in_flight slot taken
    held: bool  # and starts wait for one
    messages: list[OutboxMessage]
    taken: set[str] = field(default_factory=set)  # slots taken in this round
    delivered: int = 0
    retry_in: float | None = None

    async def admits(self, session, message: OutboxMessage) -> bool:
        """Whether the message may go now: a counted start needs a slot of the tenant's (one
        it already holds, when its start is delivered again, or a free one)."""
        if not (message.kind == "start" and message.counts_in_flight):
            return True
        workflow_id = message.workflow_id
        if workflow_id in await slots.holders(session, tenant_id=message.tenant_id):
            return True
        if not self.full:
            if await slots.reserve(
                session, tenant_id=message.tenant_id, workflow_id=workflow_id, limit=self.limit
            ):
                self.taken.add(workflow_id)
                return True
            self.full = True
        self.held = True
        message.waiting_for = "workflows_in_flight"
        OUTBOX_WAITING.labels(tenant_label(self.tenant), self.tenant.tier).inc()
        return False


class Relay:
    def __init__(
        self,
        db: Database,
        client: Client,
        *,
        dsn: str,
        settings: Settings,
        chores: list[Chore] | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.namespaces = Namespaces(client)
        self.dsn = dsn
        self.settings = settings
        self.chores = chores or []
        self.listening = asyncio.Event()
        self._due: dict[uuid.UUID, None] = {}  # an ordered set: round-robin order
        self._wake = asyncio.Event()
        self._sweep_now = asyncio.Event()
        self._down_until = 0.0
        self._down_for = 0.0
        self._reconciled: dict[uuid.UUID, float] = {}
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._placements: dict[uuid.UUID, tuple[float, str, int, bool]] = {}

    def nudge(self, tenant_id: uuid.UUID) -> None:
        self._due[tenant_id] = None
        self._wake.set()

    def _nudge_later(self, tenant_id: uuid.UUID, seconds: float) -> None:
        """One timer per tenant, the earliest asked for."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, seconds)
        timer = self._timers.get(tenant_id)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[tenant_id] = loop.call_at(when, self._timer_fired, tenant_id)

    def _timer_fired(self, tenant_id: uuid.UUID) -> None:
        self._timers.pop(tenant_id, None)
        self.nudge(tenant_id)

    async def run(self) -> None:
        helpers = [
            asyncio.create_task(self._listen_forever(), name="outbox-listen"),
            asyncio.create_task(self._sweep_forever(), name="outbox-sweep"),
        ]
        try:
            await self._deliver_forever()
        finally:
            # Bounded: a listener stuck closing its connection must not hold up a shutdown.
            await cancel_within(helpers)
            for chore in self.chores:  # a chore that runs work of its own stops with the relay
                close = getattr(chore, "aclose", None)
                if close is not None:
                    await close()

    # Waking up: NOTIFY, and the sweep.

    async def _listen_forever(self) -> None:
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception_type((OSError, psycopg.Error)),
        )
        async for attempt in retrying:
            with attempt:
                await self._listen()

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            await conn.execute(f"LISTEN {CONFIG_CHANNEL}")
            # Whatever was written or changed while nobody listened: a sweep, placements again.
            self._placements.clear()
            self._sweep_now.set()
            self.listening.set()
            async for note in conn.notifies():
                if note.channel == CONFIG_CHANNEL:
                    self._placements.clear()
                    continue
                if note.payload == CHORES:
                    self._sweep_now.set()
                    continue
                try:
                    self.nudge(uuid.UUID(note.payload))
                except ValueError:
                    log.warning("outbox notification without a tenant", payload=note.payload[:40])

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the safety net must outlive a bad round; it tries again
                if being_cancelled():
                    raise
                log.exception("outbox sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._sweep_now.wait(), timeout=self.settings.outbox_sweep_seconds
                )
            self._sweep_now.clear()

    async def sweep(self) -> None:
        async with self.db.control() as session:
            due = (await session.scalars(text("SELECT outbox_due_tenants()"))).all()
        for tenant_id in due:
            self.nudge(tenant_id)
        for chore in self.chores:
            await chore()

    # Delivering.

    async def _deliver_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            due, self._due = list(self._due), {}
            for n, tenant_id in enumerate(due):
                pause = self._down_until - loop.time()
                if pause > 0:  # Temporal is away: everyone waits, then goes on in this order
                    self._due.update(dict.fromkeys(due[n:]))
                    loop.call_later(pause, self._wake.set)
                    break
                try:
                    more = await self.round(tenant_id)
                except Exception:
                    if being_cancelled():
                        raise
                    log.exception("outbox round failed", tenant_id=str(tenant_id))
                    self._nudge_later(tenant_id, self.settings.outbox_max_backoff_seconds)
                    continue
                if more:
                    self.nudge(tenant_id)

    async def round(self, tenant_id: uuid.UUID) -> bool:
        """One batch of the tenant's due messages; True when more may be due now."""
        async with self.db.tenant(tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None or tenant.status != "active":
                return False  # a suspended tenant's messages wait; a deleted one's are purged
            batch = await self._batch(session, tenant)
            admitted = [m for m in batch.messages if await batch.admits(session, m)]
            if any(m.kind == "start" for m in admitted):  # its own namespace, registered once
                await self.namespaces.ready(batch.clients[0].namespace)
            # The batch holds one message per workflow at most, so they may go out together.
            gate = asyncio.Semaphore(SEND_AT_ONCE)
            outcomes = await asyncio.gather(
                *(self._deliver(gate, message, batch) for message in admitted)
            )
            unavailable = any(isinstance(o, TemporalUnavailable) for o in outcomes)
            if unavailable:
                self._temporal_down()
            for message, outcome in zip(admitted, outcomes, strict=True):
                await self._record(session, message, outcome, batch)
            if batch.delivered and not unavailable:
                self._down_for = 0.0
        if batch.retry_in is not None:
            self._nudge_later(tenant_id, batch.retry_in)
        if batch.held:
            if await self.reconcile(tenant_id, batch.clients):
                return True
            # A workflow that ends without its last activity (terminated, timed out) frees
            # nothing by itself: look again in a while.
            self._nudge_later(tenant_id, RECONCILE_SECONDS)
        return batch.delivered > 0

    async def _deliver(
        self, gate: asyncio.Semaphore, message: OutboxMessage, batch: _Batch
    ) -> str | Exception:
        async with gate:
            try:
                return await deliver(
                    batch.clients, message, tenant=batch.tenant, task_queue=batch.queue
                )
            except Exception as error:
                return error

    async def _record(
        self, session, message: OutboxMessage, outcome: str | Exception, batch: _Batch
    ) -> None:
        if isinstance(outcome, Exception):
            if message.workflow_id in batch.taken:
                await slots.release(
                    session, tenant_id=message.tenant_id, workflow_id=message.workflow_id
                )
            if isinstance(outcome, TemporalUnavailable):
                delay, reason = self._down_for, str(outcome)
            else:
                delay = backoff(message.attempts + 1, self.settings.outbox_max_backoff_seconds)
                reason = f"{type(outcome).__name__}: {outcome}"
            await self._failed(session, message, reason, delay)
            batch.retry_in = delay if batch.retry_in is None else min(batch.retry_in, delay)
            return
        message.delivered_at, message.outcome = func.clock_timestamp(), outcome
        message.waiting_for = None
        batch.delivered += 1
        OUTBOX_DELIVERED.labels(message.kind, outcome).inc()
        OUTBOX_DELAY.labels(message.kind).observe(
            max(0.0, time.time() - message.created_at.timestamp())
        )

    async def _batch(self, session, tenant: Tenant) -> _Batch:
        queue, limit, own = await self._placement(session, tenant)
        # A tenant with no room claims around its held starts, so they hold nothing else up.
        full = len(await slots.holders(session, tenant_id=tenant.id)) >= limit
        return _Batch(
            tenant=TenantRef(tenant.id, tenant.slug, tenant.tier),
            queue=queue,
            clients=self.namespaces.clients_of(tenant.slug, own=own),
            limit=limit,
            full=full,
            held=full and await self._holds_starts(session, tenant.id),
            messages=await self._claim(session, tenant.id, skip_counted=full),
        )

    async def _placement(self, session, tenant: Tenant) -> tuple[str, int, bool]:
        """The tenant's task queue, workflows_in_flight and whether its workflows go to its own
        namespace, from its configuration and limits.

        Kept while a backlog drains batch after batch, and dropped at once when a configuration
        or limit changes (NOTIFY on the same connection, so before the next message's own): a
        tenant just moved to dedicated workers gets its next workflow on its own queue.
        """
        cached = self._placements.get(tenant.id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2], cached[3]
        effective = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
        policy = build_policy(tenant, effective)
        queue = task_queue_for(tenant.slug, policy.config, self.settings.pool_task_queue)
        limit = policy.limits.workflows_in_flight
        own = has_own_namespace(policy.config)
        self._placements[tenant.id] = (time.monotonic() + PLACEMENT_SECONDS, queue, limit, own)
        return queue, limit, own

    async def _claim(
        self, session, tenant_id: uuid.UUID, *, skip_counted: bool
    ) -> list[OutboxMessage]:
        """The tenant's due messages that come first for their workflow, locked for this relay."""
        earlier = aliased(OutboxMessage)
        waits = (
            select(earlier.seq)
            .where(
                earlier.tenant_id == OutboxMessage.tenant_id,
                earlier.workflow_id == OutboxMessage.workflow_id,
                earlier.delivered_at.is_(None),
                earlier.seq < OutboxMessage.seq,
            )
            .exists()
        )
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.tenant_id == tenant_id,
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.available_at <= func.clock_timestamp(),
                    ~waits,
                    *(
                        [~(OutboxMessage.kind == "start") | ~OutboxMessage.counts_in_flight]
                        if skip_counted
                        else []
                    ),
                )
                .order_by(OutboxMessage.seq)
                .limit(BATCH)
                .with_for_update(skip_locked=True, of=OutboxMessage)
            )
        )

    async def _holds_starts(self, session, tenant_id: uuid.UUID) -> bool:
        """Whether starts wait for a slot (then the relay looks for slots to give back)."""
        return bool(
            await session.scalar(
                select(
                    select(OutboxMessage.seq)
                    .where(
                        OutboxMessage.tenant_id == tenant_id,
                        OutboxMessage.delivered_at.is_(None),
                        OutboxMessage.kind == "start",
                        OutboxMessage.counts_in_flight,
                    )
                    .exists()
                )
            )
        )

    async def _failed(self, session, message: OutboxMessage, error: str, delay: float) -> None:
        message.attempts += 1
        message.last_error = error[:1000]
        message.available_at = func.clock_timestamp() + timedelta(seconds=delay)
        OUTBOX_RETRIES.labels(message.kind).inc()
        log.warning(
            "outbox delivery failed; will retry",
            kind=message.kind,
            attempts=message.attempts,
            retry_in_s=round(delay, 2),
            error=error[:200],
        )
        await session.flush()

    def _temporal_down(self) -> None:
        self._down_for = min(self.settings.outbox_max_backoff_seconds, max(0.5, self._down_for * 2))
        self._down_until = asyncio.get_running_loop().time() + self._down_for

    async def reconcile(self, tenant_id: uuid.UUID, clients: list[Client]) -> bool:
        """Give back the slots of workflows that ended without saying so (terminated, timed out,
        or their last activity never ran), looked for in `clients`' namespaces; True when any was
        freed. At most every few seconds."""
        now = time.monotonic()
        if now - self._reconciled.get(tenant_id, 0.0) < RECONCILE_SECONDS:
            return False
        self._reconciled[tenant_id] = now
        async with self.db.tenant(tenant_id) as session:
            holders = await slots.holders(session, tenant_id=tenant_id)
        ended = []
        for workflow_id in holders:
            try:
                described = await first_found(
                    clients, lambda c, w=workflow_id: c.get_workflow_handle(w).describe()
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    return False  # Temporal is not answering: keep the slots, try later
                ended.append(workflow_id)
                continue
            if described.status != WorkflowExecutionStatus.RUNNING:
                ended.append(workflow_id)
        if not ended:
            return False
        async with self.db.tenant(tenant_id) as session:
            for workflow_id in ended:
                await slots.release(session, tenant_id=tenant_id, workflow_id=workflow_id)
        log.info("workflow slots given back", tenant_id=str(tenant_id), count=len(ended))
        return True
