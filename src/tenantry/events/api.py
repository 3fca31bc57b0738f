"""`/v1/webhooks`: a tenant's endpoints, their delivery log, and redelivery on demand."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tenantry.api_support import database, settings_of
from tenantry.db.session import Database
from tenantry.egress.policy import EgressPolicy
from tenantry.events import service
from tenantry.events.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
)
from tenantry.events.targets import validate_url
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
MANAGE = guard(Permission.WEBHOOKS_MANAGE)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointCreated, **MANAGE)
async def create_endpoint(
    body: EndpointCreate, subject: Caller, db: Db, settings: Config
) -> EndpointCreated:
    await validate_url(body.url, EgressPolicy(settings.egress_allowlist))
    async with db.tenant(subject.tenant.id) as session:
        endpoint = await service.create_endpoint(
            session, tenant_id=subject.tenant.id, data=body, actor=subject.audit_name
        )
        return EndpointCreated(
            **EndpointOut.model_validate(endpoint).model_dump(), secret=endpoint.secret
        )


@router.get("", response_model=Page[EndpointOut], **MANAGE)
async def list_endpoints(subject: Caller, db: Db, paging: PageParams) -> Page[EndpointOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await service.list_endpoints(
            session, tenant_id=subject.tenant.id, cursor=paging.cursor, limit=paging.limit
        )
        items = [EndpointOut.model_validate(e) for e in rows]
    return Page[EndpointOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.get("/{endpoint_id}", response_model=EndpointOut, **MANAGE)
async def show_endpoint(endpoint_id: uuid.UUID, subject: Caller, db: Db) -> EndpointOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        return EndpointOut.model_validate(
            await service.get_endpoint(
                session, tenant_id=subject.tenant.id, endpoint_id=endpoint_id
            )
        )


@router.patch("/{endpoint_id}", response_model=EndpointOut, **MANAGE)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointUpdate, subject: Caller, db: Db, settings: Config
) -> EndpointOut:
    if body.url is not None:
        await validate_url(body.url, EgressPolicy(settings.egress_allowlist))
    async with db.tenant(subject.tenant.id) as session:
        endpoint = await service.update_endpoint(
            session,
            tenant_id=subject.tenant.id,
            endpoint_id=endpoint_id,
            data=body,
            actor=subject.audit_name,
        )
        return EndpointOut.model_validate(endpoint)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, **MANAGE)
async def delete_endpoint(endpoint_id: uuid.UUID, subject: Caller, db: Db) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await service.delete_endpoint(
            session, tenant_id=subject.tenant.id, endpoint_id=endpoint_id, actor=subject.audit_name
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryOut], **MANAGE)
async def list_deliveries(
    endpoint_id: uuid.UUID, subject: Caller, db: Db, paging: PageParams
) -> Page[DeliveryOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await service.list_deliveries(
            session,
            tenant_id=subject.tenant.id,
            endpoint_id=endpoint_id,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        items = [DeliveryOut.model_validate(d) for d in rows]
    return Page[DeliveryOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    **MANAGE,
)
async def redeliver(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, subject: Caller, db: Db
) -> DeliveryOut:
    async with db.tenant(subject.tenant.id) as session:
        delivery = await service.reset_for_redelivery(
            session, tenant_id=subject.tenant.id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        return DeliveryOut.model_validate(delivery)
