"""Each tenant's backup schedules, as Temporal Schedules.

A tenant gets one schedule per cadence of its tier (`retention.TIER_CADENCES`), with the cron of
`retention.CRON`, overlap policy SKIP (a backup still running when the next is due lets it go),
id `{slug}/backup-schedule/{cadence}`. Each run starts `BackupTenant` as
`{slug}/backup/scheduled-{cadence}-{time}` on the tenant's task queue, with the `TenantId` search
attribute and the tenant in its headers: the workflow records a `scheduled` backup, takes it,
then prunes the tenant's backups by retention.

What Temporal holds follows the tenant's row: `desired()` says what a tenant should have (none
once it is deleting or deleted, paused while suspended) and `reconcile()` makes it so; every
change of tier or status writes a `schedule_syncs` row in its transaction, and `ScheduleSync`,
a chore of the outbox relay, reconciles those tenants after the commit. `sync_all()` (the CLI's
`tenantry backup schedules sync`, and the worker at start) reconciles every tenant and removes
the schedules of tenants that no longer exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select, update
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
)
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from tenantry.config import service as config_service
from tenantry.db.session import Database
from tenantry.limits.policy import build_policy
from tenantry.ops.retention import CRON, TIER_CADENCES
from tenantry.outbox.models import ScheduleSync
from tenantry.settings import Settings
from tenantry.tenancy.context import TenantRef, tenant_context
from tenantry.tenants.models import Tenant
from tenantry.tenants.tiers import TIERS
from tenantry.worker.queues import TENANT_ID, task_queue_for

log = structlog.get_logger("tenantry.ops")

WORKFLOW = "BackupTenant"
KIND = "backup-schedule"
OVERLAP = ScheduleOverlapPolicy.SKIP
LEASE = timedelta(minutes=2)
# Cron fields, in order, with the full range the server writes for `*`.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31), ("month", 1, 12))
WEEKDAYS = ("day_of_week", 0, 6)


def schedule_id(slug: str, cadence: str) -> str:
    return f"{slug}/{KIND}/{cadence}"


def parse_id(value: str) -> tuple[str, str] | None:
    """(slug, cadence) of one of our schedule ids; None for anybody else's schedule."""
    parts = value.split("/")
    if len(parts) != 3 or parts[1] != KIND:
        return None
    return parts[0], parts[2]


@dataclass(frozen=True)
class Wanted:
    """One schedule as a tenant should have it."""

    slug: str
    cadence: str
    cron: str
    task_queue: str
    tenant_id: str
    tier: str
    paused: bool

    @property
    def id(self) -> str:
        return schedule_id(self.slug, self.cadence)

    @property
    def arg(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "backup_id": None, "cadence": self.cadence}

    def schedule(self) -> Schedule:
        action = ScheduleActionStartWorkflow(
            WORKFLOW,
            self.arg,
            id=f"{self.slug}/backup/scheduled-{self.cadence}",
            task_queue=self.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT_ID, self.slug)]
            ),
            priority=Priority(
                fairness_key=self.slug, fairness_weight=TIERS[self.tier].fairness_weight
            ),
        )
        return Schedule(
            action=action,
            spec=ScheduleSpec(cron_expressions=[self.cron]),
            policy=SchedulePolicy(overlap=OVERLAP),
            state=ScheduleState(paused=self.paused, note=_note(self.paused)),
        )


def _note(paused: bool) -> str:
    return "tenant suspended" if paused else "tenantry backup schedule"


@dataclass(frozen=True)
class Seen:
    """One schedule as Temporal describes it, in the terms of `Wanted`."""

    id: str
    cron: str | None
    overlap: ScheduleOverlapPolicy
    workflow: str
    workflow_id: str
    task_queue: str
    arg: Any
    tenant_attribute: str | None
    paused: bool
    next_runs: list[str]

    def matches(self, wanted: Wanted) -> bool:
        return (
            self.cron == wanted.cron
            and self.overlap == OVERLAP
            and self.workflow == WORKFLOW
            and self.workflow_id == wanted.schedule().action.id
            and self.task_queue == wanted.task_queue
            and self.arg == wanted.arg
            and self.tenant_attribute == wanted.slug
            and self.paused == wanted.paused
        )

    def out(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cron": self.cron,
            "overlap": self.overlap.name.lower(),
            "workflow": self.workflow,
            "workflow_id": self.workflow_id,
            "task_queue": self.task_queue,
            "arg": self.arg,
            "tenant_id_attribute": self.tenant_attribute,
            "paused": self.paused,
            "next_runs": self.next_runs,
        }


def cron_of(spec: ScheduleSpec) -> str | None:
    """The 5-field cron a spec holds (the server turns a cron into one calendar); None when the
    spec is anything else, which then differs from every wanted cron."""
    if spec.cron_expressions:
        return spec.cron_expressions[0] if len(spec.cron_expressions) == 1 else None
    if len(spec.calendars) != 1 or spec.intervals or spec.skip:
        return None
    calendar: ScheduleCalendarSpec = spec.calendars[0]
    if calendar.year or [(r.start, max(r.end, r.start)) for r in calendar.second] != [(0, 0)]:
        return None
    fields = []
    for name, low, high in (*FIELDS, WEEKDAYS):
        ranges = getattr(calendar, name)
        if len(ranges) != 1 or ranges[0].step not in (0, 1):
            return None
        start, end = ranges[0].start, max(ranges[0].end, ranges[0].start)
        if (start, end) == (low, high):
            fields.append("*")
        elif start == end:
            fields.append(str(start))
        else:
            return None
    return " ".join(fields)


async def seen(client: Client, described: ScheduleDescription) -> Seen:
    schedule = described.schedule
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    # Decoded as the worker decodes them (the tenant's key opens them).
    values = await client.data_converter.decode(list(action.args)) if action.args else []
    return Seen(
        id=described.id,
        cron=cron_of(schedule.spec),
        overlap=schedule.policy.overlap,
        workflow=action.workflow,
        workflow_id=action.id,
        task_queue=action.task_queue,
        arg=values[0] if values else None,
        tenant_attribute=action.typed_search_attributes.get(TENANT_ID),
        paused=schedule.state.paused,
        next_runs=[t.isoformat() for t in described.info.next_action_times[:3]],
    )


async def desired(session, tenant: Tenant, settings: Settings) -> list[Wanted]:
    """The schedules the tenant should have now: its tier's, paused while it is suspended."""
    if tenant.status not in ("active", "suspended"):
        return []
    effective = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
    policy = build_policy(tenant, effective)
    queue = task_queue_for(tenant.slug, policy.config, settings.pool_task_queue)
    return [
        Wanted(
            slug=tenant.slug,
            cadence=cadence,
            cron=CRON[cadence],
            task_queue=queue,
            tenant_id=str(tenant.id),
            tier=tenant.tier,
            paused=tenant.status == "suspended",
        )
        for cadence in TIER_CADENCES[tenant.tier]
    ]


async def describe(client: Client, schedule: str) -> Seen | None:
    try:
        return await seen(client, await client.get_schedule_handle(schedule).describe())
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def reconcile(client: Client, slug: str, wanted: list[Wanted]) -> dict[str, list[str]]:
    """Make the slug's schedules in Temporal exactly `wanted`: what it did, by schedule id."""
    done: dict[str, list[str]] = {"created": [], "updated": [], "deleted": [], "kept": []}
    wanted_ids = {w.id for w in wanted}
    for cadence in CRON:
        schedule = schedule_id(slug, cadence)
        if schedule not in wanted_ids and await _delete(client, schedule):
            done["deleted"].append(schedule)
    for want in wanted:
        current = await describe(client, want.id)
        if current is None:
            await _create(client, want)
            done["created"].append(want.id)
        elif current.matches(want):
            done["kept"].append(want.id)
        else:
            await _update(client, want)
            done["updated"].append(want.id)
    return done


async def _create(client: Client, want: Wanted) -> None:
    # The tenant's context: its key encrypts the action's argument like any of its payloads.
    with tenant_context_of(want):
        try:
            await client.create_schedule(want.id, want.schedule())
        except ScheduleAlreadyRunningError:  # another relay made it meanwhile: make it ours
            await _update(client, want)


async def _update(client: Client, want: Wanted) -> None:
    async def replace(_: Any) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=want.schedule())

    with tenant_context_of(want):
        await client.get_schedule_handle(want.id).update(replace)


async def _delete(client: Client, schedule: str) -> bool:
    try:
        await client.get_schedule_handle(schedule).delete()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def tenant_context_of(want: Wanted):
    return tenant_context(TenantRef(uuid.UUID(want.tenant_id), want.slug, want.tier))


async def sync_tenant(
    db: Database, client: Client, settings: Settings, *, tenant_id: uuid.UUID
) -> dict[str, list[str]]:
    """Read the tenant now and make its schedules match."""
    async with db.control() as session:
        tenant = await session.get(Tenant, tenant_id)
        wanted = await desired(session, tenant, settings)
    return await reconcile(client, tenant.slug, wanted)


async def sync_all(db: Database, client: Client, settings: Settings) -> dict[str, Any]:
    """Every tenant's schedules as they should be, and none for tenants that are gone.

    Idempotent: creates what is missing, fixes what drifted, deletes orphans (ours by their id,
    for a slug that is no live tenant, or a cadence its tier no longer has)."""
    async with db.control() as session:
        tenants = (await session.scalars(select(Tenant))).all()
        wanted = {t.slug: await desired(session, t, settings) for t in tenants}
    held: dict[str, str] = {}  # our schedules in Temporal: id -> slug
    async for listed in await client.list_schedules():
        parsed = parse_id(listed.id)
        if parsed is not None:
            held[listed.id] = parsed[0]
    totals: dict[str, list[str]] = {"created": [], "updated": [], "deleted": [], "kept": []}
    for slug, schedules in wanted.items():
        if schedules or slug in held.values():
            for key, ids in (await reconcile(client, slug, schedules)).items():
                totals[key].extend(ids)
    for schedule, slug in held.items():
        if slug not in wanted and await _delete(client, schedule):
            totals["deleted"].append(schedule)
    return {key: sorted(ids) for key, ids in totals.items()}


async def list_schedules(client: Client, *, slug: str | None = None) -> list[dict[str, Any]]:
    """Our schedules as Temporal holds them (one tenant's, or all)."""
    ids: list[str] = []
    if slug is not None:
        ids = [schedule_id(slug, cadence) for cadence in CRON]
    else:
        async for listed in await client.list_schedules():
            if parse_id(listed.id) is not None:
                ids.append(listed.id)
    found = [await describe(client, schedule) for schedule in sorted(ids)]
    return [s.out() for s in found if s is not None]


class SyncSchedules:
    """The relay's chore: reconcile every tenant whose schedules are owed a sync."""

    def __init__(self, db: Database, client: Client, settings: Settings) -> None:
        self.db = db
        self.client = client
        self.settings = settings

    async def __call__(self) -> int:
        synced = 0
        while (claimed := await self._claim()) is not None:
            tenant_id, requested_at = claimed
            try:
                await sync_tenant(self.db, self.client, self.settings, tenant_id=tenant_id)
            except Exception as error:  # Temporal away, say: the row waits and is tried again
                log.warning("schedule sync failed", tenant_id=str(tenant_id), error=str(error))
                await self._retry_later(tenant_id, f"{type(error).__name__}: {error}")
                continue
            async with self.db.control() as session:
                # A change committed meanwhile asked again: its row stays for the next pass.
                await session.execute(
                    delete(ScheduleSync).where(
                        ScheduleSync.tenant == tenant_id,
                        ScheduleSync.requested_at == requested_at,
                    )
                )
            synced += 1
        return synced

    async def _claim(self):
        async with self.db.control() as session:
            row = await session.scalar(
                select(ScheduleSync)
                .where(ScheduleSync.due_at <= func.clock_timestamp())
                .order_by(ScheduleSync.due_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            claimed = row.tenant, row.requested_at
            row.due_at = func.clock_timestamp() + LEASE
            row.attempts += 1
        return claimed

    async def _retry_later(self, tenant_id: uuid.UUID, error: str) -> None:
        async with self.db.control() as session:
            attempts = await session.scalar(
                select(ScheduleSync.attempts).where(ScheduleSync.tenant == tenant_id)
            )
            await session.execute(
                update(ScheduleSync)
                .where(ScheduleSync.tenant == tenant_id)
                .values(
                    error=error[:1000],
                    due_at=func.clock_timestamp()
                    + timedelta(seconds=min(300, 2 ** (attempts or 1))),
                )
            )
