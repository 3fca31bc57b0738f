"""Tenant admins: webhook endpoints (the signing secret shown once), deliveries, redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Config, Db
from tenantry.console.forms import parse
from tenantry.events import api as webhooks_api
from tenantry.events.schemas import EndpointCreate
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission

router = APIRouter(prefix="/webhooks")
MANAGE = guard(Permission.WEBHOOKS_MANAGE)
EVENTS = ("*", "incident.created", "incident.escalated", "incident.resolved", "document.ready")


@router.get("", **MANAGE)
async def endpoint_list(request: Request, subject: Caller, db: Db) -> HTMLResponse:
    endpoints = await lists.all_endpoints(subject, db)
    return render.page(
        request, "tenant/webhooks.html", endpoints=endpoints, events=EVENTS, created=None
    )


@router.post("", **MANAGE)
async def create_endpoint(
    request: Request,
    subject: Caller,
    db: Db,
    settings: Config,
    url: Annotated[str, Form(max_length=2000)],
    events: Annotated[list[str], Form(max_length=8)] = [],  # noqa: B006 (FastAPI copies it)
    description: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    body = parse(
        EndpointCreate,
        url=url.strip(),
        events=events or ["*"],
        description=description.strip() or None,
    )
    created = await webhooks_api.create_endpoint(body, subject, db, settings)
    endpoints = await lists.all_endpoints(subject, db)
    return render.page(
        request,
        "tenant/webhooks.html",
        status_code=201,
        endpoints=endpoints,
        events=EVENTS,
        created=created,
    )


@router.get("/{endpoint_id}", **MANAGE)
async def endpoint_page(
    request: Request,
    endpoint_id: uuid.UUID,
    subject: Caller,
    db: Db,
    cursor: lists.Cursor = None,
) -> HTMLResponse:
    endpoint = await webhooks_api.show_endpoint(endpoint_id, subject, db)
    found = await lists.deliveries(subject, db, endpoint_id, cursor)
    return render.page(
        request,
        "tenant/webhook.html",
        endpoint=endpoint,
        deliveries=found.items,
        next_cursor=found.next_cursor,
    )


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", **MANAGE)
async def redeliver(
    request: Request, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, subject: Caller, db: Db
) -> Response:
    await webhooks_api.redeliver(endpoint_id, delivery_id, subject, db)
    return render.done(
        request, f"/console/webhooks/{endpoint_id}", "Delivery queued to be sent again."
    )


@router.post("/{endpoint_id}/delete", **MANAGE)
async def delete_endpoint(
    request: Request, endpoint_id: uuid.UUID, subject: Caller, db: Db
) -> Response:
    await webhooks_api.delete_endpoint(endpoint_id, subject, db)
    return render.done(request, "/console/webhooks", "Endpoint deleted.")
