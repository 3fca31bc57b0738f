"""Operators: a tenant's backups, its moves between cells, its health and SLO, and a deletion's
progress.

Backups and moves are requested by the API's own handlers (`/v1/admin/tenants/{slug}/backups`,
`.../moves`), so they are checked and audited as those calls are; the SLO is the report
`GET /v1/admin/tenants/{slug}/slo` answers. Lists that change while work runs (a backup's rows,
a deletion's clean-up) are fragments htmx polls, and whole pages without JavaScript.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import render
from tenantry.console.common import Config, Db, tenant_by_slug
from tenantry.console.forms import parse
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.limits import service as limits_service
from tenantry.observability import slo
from tenantry.ops import api as backups_api
from tenantry.ops import moves, moves_api
from tenantry.ops import service as backups
from tenantry.ops.schemas import MoveIn
from tenantry.outbox import slots
from tenantry.settings import Settings
from tenantry.tenants import cells, deletion
from tenantry.tenants.models import Tenant

router = APIRouter(prefix="/admin/tenants/{slug}")
BACKUPS_SHOWN = 10
MOVES_SHOWN = 10
RUNNING = ("queued", "running")


@dataclass(frozen=True)
class Health:
    slo: slo.SloOut
    in_flight: int
    queued: int
    use: list[tuple[str, int, int]]  # (limit, in use, effective limit)


async def health_of(db: Database, tenant: Tenant) -> Health:
    """The tenant's SLO windows, its workflows, and what it uses of the limits that count."""
    report = await slo.report(db, tenant_id=tenant.id, slug=tenant.slug, tier=tenant.tier)
    async with db.tenant(tenant.id) as session:
        in_flight, queued = await slots.use(session, tenant_id=tenant.id)
        counts = await limits_service.current_counts(session, tenant_id=tenant.id)
    limits = limits_service.limits_view(tenant).effective
    counts["workflows_in_flight"] = in_flight
    use = [(name, used, getattr(limits, name)) for name, used in counts.items()]
    return Health(slo=report, in_flight=in_flight, queued=queued, use=use)


async def recent_backups(db: Database, tenant: Tenant) -> list:
    async with db.control() as session:
        rows, _ = await backups.list_backups(
            session, tenant_id=tenant.id, cursor=None, limit=BACKUPS_SHOWN
        )
    return rows


def any_running(rows: list) -> bool:
    return any(b.status in RUNNING for b in rows)


async def placement(db: Database, tenant: Tenant, settings: Settings) -> dict:
    """The moves section's values: the tenant's latest moves and the cells it could go to."""
    async with db.control() as session:
        rows, _ = await moves.list_moves(
            session, tenant_id=tenant.id, cursor=None, limit=MOVES_SHOWN
        )
        registered = await cells.list_cells(session)
    names = [settings.cell, *(c.name for c in registered)]
    kinds = {settings.cell: cells.POOL, **{c.name: c.kind for c in registered}}
    return {"moves": rows, "moving": any_running(rows), "cells": names, "kinds": kinds}


@router.get("/backups", **guard(OPERATOR))
async def backups_list(request: Request, slug: str, operator: Caller, db: Db) -> HTMLResponse:
    """The backups section alone: what htmx polls while one runs, a page of its own without JS."""
    tenant = await tenant_by_slug(db, slug)
    rows = await recent_backups(db, tenant)
    template = "admin/tenant_backups.html" if render.is_htmx(request) else "admin/backups.html"
    return render.page(request, template, tenant=tenant, backups=rows, running=any_running(rows))


@router.post("/backups", **guard(OPERATOR))
async def request_backup(request: Request, slug: str, operator: Caller, db: Db) -> Response:
    backup = await backups_api.request_backup(slug, operator, db)
    # No `#backups`: htmx's redirect to the same page with only a fragment would not reload it.
    return render.done(request, f"/console/admin/tenants/{slug}", f"Backup {backup.id} requested.")


@router.post("/backups/{backup_id}/verify", **guard(OPERATOR))
async def verify_backup(
    request: Request, slug: str, backup_id: uuid.UUID, operator: Caller, db: Db, settings: Config
) -> HTMLResponse:
    """The archive fetched from the store and checked, as the API's verify does."""
    report = await backups_api.verify_backup(slug, backup_id, operator, db, settings)
    template = (
        "admin/backup_report.html" if render.is_htmx(request) else "admin/backup_verified.html"
    )
    return render.page(request, template, slug=slug, backup_id=backup_id, report=report)


@router.get("/moves", **guard(OPERATOR))
async def moves_list(
    request: Request, slug: str, operator: Caller, db: Db, settings: Config
) -> HTMLResponse:
    """The moves section alone: what htmx polls while one runs, a page of its own without JS."""
    tenant = await tenant_by_slug(db, slug)
    template = "admin/tenant_moves.html" if render.is_htmx(request) else "admin/moves.html"
    return render.page(request, template, tenant=tenant, **await placement(db, tenant, settings))


@router.post("/moves", **guard(OPERATOR))
async def request_move(
    request: Request,
    slug: str,
    operator: Caller,
    db: Db,
    settings: Config,
    cell: Annotated[str, Form(max_length=64)],
    namespace: Annotated[bool, Form()] = False,
) -> Response:
    asked = parse(MoveIn, cell=cell, namespace=namespace)
    move = await moves_api.request_move(slug, asked, operator, db, settings)
    return render.done(
        request, f"/console/admin/tenants/{slug}", f"Move {move.id} to cell {cell} requested."
    )


@router.get("/health", **guard(OPERATOR))
async def health(request: Request, slug: str, operator: Caller, db: Db) -> HTMLResponse:
    tenant = await tenant_by_slug(db, slug)
    template = "admin/tenant_health.html" if render.is_htmx(request) else "admin/health.html"
    return render.page(request, template, tenant=tenant, health=await health_of(db, tenant))


@router.get("/deletion", **guard(OPERATOR))
async def deletion_progress(request: Request, slug: str, operator: Caller, db: Db) -> HTMLResponse:
    """Where a deletion stands: rows purged, then the clean-up outside the database."""
    tenant = await tenant_by_slug(db, slug)
    async with db.control() as session:
        receipt = await deletion.receipt_of(session, tenant_id=tenant.id)
    template = "admin/deletion_state.html" if render.is_htmx(request) else "admin/deletion.html"
    return render.page(
        request, template, tenant=tenant, receipt=receipt, stages=deletion_stages(tenant, receipt)
    )


def deletion_stages(tenant: Tenant, receipt) -> list[tuple[str, str, str]]:
    """(stage, state: done | running | waiting, detail), in the order a deletion goes."""
    purged = receipt is not None
    cleaned = purged and receipt.cleaned_at is not None
    marked = tenant.status in ("deleting", "deleted")
    rows = sum(receipt.purged.values()) if purged else 0
    stages = [
        ("Marked for deletion", "done" if marked else "waiting", "no new work is accepted"),
        (
            "Rows purged and data key destroyed",
            "done" if purged else ("running" if marked else "waiting"),
            f"{rows:,} rows" + (", key destroyed" if purged and receipt.key_destroyed else ""),
        ),
        (
            "Workflows terminated, late rows and audit log purged, index dropped",
            "done" if cleaned else ("running" if purged else "waiting"),
            _cleanup_detail(receipt) if purged else "",
        ),
    ]
    return stages


def _cleanup_detail(receipt) -> str:
    parts = [f"{receipt.workflows_terminated} workflows terminated"]
    if receipt.index_dropped:
        parts.append("own index dropped")
    parts.append(f"{receipt.cleanup_attempts} passes")
    if receipt.cleanup_error:
        parts.append(f"last error: {receipt.cleanup_error[:200]}")
    return ", ".join(parts)
