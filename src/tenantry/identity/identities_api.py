"""`/v1/users/{user_id}/identities`: the sign-in identities linked to a user."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tenantry.api_support import database
from tenantry.db.session import Database
from tenantry.identity import identities
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import IdentityLink, IdentityOut
from tenantry.identity.sso_config import actor_role
from tenantry.pages import Page, PageParams

router = APIRouter(prefix="/v1/users/{user_id}/identities", tags=["users"])
Db = Annotated[Database, Depends(database)]
MANAGE = guard(Permission.USERS_MANAGE)


@router.get("", response_model=Page[IdentityOut], **MANAGE)
async def list_identities(
    user_id: uuid.UUID, subject: Caller, db: Db, paging: PageParams
) -> Page[IdentityOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await identities.list_for(
            session,
            tenant_id=subject.tenant.id,
            user_id=user_id,
            cursor=paging.cursor,
            limit=paging.limit,
        )
        items = [IdentityOut.model_validate(row) for row in rows]
    return Page[IdentityOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IdentityOut, **MANAGE)
async def link_identity(
    user_id: uuid.UUID, body: IdentityLink, subject: Caller, db: Db
) -> IdentityOut:
    async with db.tenant(subject.tenant.id) as session:
        identity = await identities.link(
            session,
            tenant_id=subject.tenant.id,
            user_id=user_id,
            data=body,
            actor=subject.audit_name,
            actor_id=subject.id if subject.kind == "user" else None,
            actor_role=actor_role(subject),
        )
        return IdentityOut.model_validate(identity)


@router.delete("/{identity_id}", status_code=status.HTTP_204_NO_CONTENT, **MANAGE)
async def unlink_identity(
    user_id: uuid.UUID, identity_id: uuid.UUID, subject: Caller, db: Db
) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await identities.unlink(
            session,
            tenant_id=subject.tenant.id,
            user_id=user_id,
            identity_id=identity_id,
            actor=subject.audit_name,
            actor_id=subject.id if subject.kind == "user" else None,
            actor_role=actor_role(subject),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
