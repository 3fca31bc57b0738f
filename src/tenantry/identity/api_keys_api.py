"""`/v1/api-keys`: a tenant's programmatic credentials."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from tenantry.api_support import database, policy_of
from tenantry.db.session import Database
from tenantry.identity import api_keys
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.models import ApiKey
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyCreator, ApiKeyOut
from tenantry.pages import Page, PageParams

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])
Db = Annotated[Database, Depends(database)]


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=api_keys.display_prefix(key),
        scopes=key.scopes,
        state=api_keys.state_of(key),
        created_by=key.created_by,
        creator=ApiKeyCreator.model_validate(key.creator) if key.creator else None,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.get("", response_model=Page[ApiKeyOut], **guard(Permission.API_KEYS_READ))
async def list_keys(subject: Caller, db: Db, paging: PageParams) -> Page[ApiKeyOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await api_keys.list_keys(
            session, tenant_id=subject.tenant.id, cursor=paging.cursor, limit=paging.limit
        )
    return Page[ApiKeyOut](
        items=[_out(k) for k in rows], next_cursor=next_cursor, limit=paging.limit
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    **guard(Permission.API_KEYS_MANAGE),
)
async def create_key(
    body: ApiKeyCreate, subject: Caller, db: Db, request: Request
) -> ApiKeyCreated:
    policy = await policy_of(request, subject.tenant.id)
    async with db.tenant(subject.tenant.id) as session:
        key, secret = await api_keys.create(
            session,
            tenant_id=subject.tenant.id,
            data=body,
            actor=subject.audit_name,
            creator_id=subject.id if subject.kind == "user" else subject.creator_id,
            quota=policy.limits.api_keys,
        )
    return ApiKeyCreated(**_out(key).model_dump(), key=secret)


@router.get("/{key_id}", response_model=ApiKeyOut, **guard(Permission.API_KEYS_READ))
async def show_key(key_id: uuid.UUID, subject: Caller, db: Db) -> ApiKeyOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        return _out(await api_keys.get(session, tenant_id=subject.tenant.id, key_id=key_id))


@router.delete("/{key_id}", response_model=ApiKeyOut, **guard(Permission.API_KEYS_MANAGE))
async def revoke_key(key_id: uuid.UUID, subject: Caller, db: Db) -> ApiKeyOut:
    async with db.tenant(subject.tenant.id) as session:
        key = await api_keys.revoke(
            session, tenant_id=subject.tenant.id, key_id=key_id, actor=subject.audit_name
        )
    return _out(key)
