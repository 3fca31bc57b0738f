"""`/v1/users`: a tenant's people, managed by its admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tenantry.api_support import database, policy_of
from tenantry.db.session import Database
from tenantry.identity import users
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission, acting_role
from tenantry.identity.schemas import UserCreate, UserOut, UserUpdate
from tenantry.pages import Page, PageParams

router = APIRouter(prefix="/v1/users", tags=["users"])
Db = Annotated[Database, Depends(database)]


@router.get("", response_model=Page[UserOut], **guard(Permission.USERS_READ))
async def list_users(subject: Caller, db: Db, paging: PageParams) -> Page[UserOut]:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        rows, next_cursor = await users.list_users(
            session, tenant_id=subject.tenant.id, cursor=paging.cursor, limit=paging.limit
        )
        items = [UserOut.model_validate(u) for u in rows]
    return Page[UserOut](items=items, next_cursor=next_cursor, limit=paging.limit)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    **guard(Permission.USERS_MANAGE),
)
async def create_user(body: UserCreate, subject: Caller, db: Db, request: Request) -> UserOut:
    policy = await policy_of(request, subject.tenant.id)
    async with db.tenant(subject.tenant.id) as session:
        user = await users.create(
            session,
            tenant_id=subject.tenant.id,
            data=body,
            actor=subject.audit_name,
            actor_role=acting_role(subject),
            quota=policy.limits.users,
        )
        return UserOut.model_validate(user)


@router.get("/{user_id}", response_model=UserOut, **guard(Permission.USERS_READ))
async def show_user(user_id: uuid.UUID, subject: Caller, db: Db) -> UserOut:
    async with db.tenant(subject.tenant.id, readonly=True) as session:
        return UserOut.model_validate(
            await users.get(session, tenant_id=subject.tenant.id, user_id=user_id)
        )


@router.patch("/{user_id}", response_model=UserOut, **guard(Permission.USERS_MANAGE))
async def update_user(user_id: uuid.UUID, body: UserUpdate, subject: Caller, db: Db) -> UserOut:
    async with db.tenant(subject.tenant.id) as session:
        user = await users.update(
            session,
            tenant_id=subject.tenant.id,
            user_id=user_id,
            data=body,
            actor=subject.audit_name,
            actor_role=acting_role(subject),
        )
        return UserOut.model_validate(user)


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, **guard(Permission.USERS_MANAGE)
)
async def remove_user(user_id: uuid.UUID, subject: Caller, db: Db) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await users.remove(
            session,
            tenant_id=subject.tenant.id,
            user_id=user_id,
            actor=subject.audit_name,
            actor_role=acting_role(subject),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
