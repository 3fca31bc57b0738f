"""Operator identity: `/v1/admin/operators`, `/v1/admin/auth/login`, a tenant's first users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from tenantry.api_support import database, policy_of, settings_of
from tenantry.api_types import SlugRef
from tenantry.db.session import Database
from tenantry.errors import Unauthorized
from tenantry.identity import bootstrap, operators, users
from tenantry.identity.dependencies import BOOTSTRAP, OPERATOR, PUBLIC, Caller, guard
from tenantry.identity.schemas import (
    OperatorCreate,
    OperatorLoginIn,
    OperatorOut,
    TokenOut,
    UserCreate,
    UserOut,
)
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenancy.client_address import client_address
from tenantry.tenants import service as tenants

router = APIRouter(prefix="/v1/admin", tags=["admin: identity"])
Db = Annotated[Database, Depends(database)]


@router.post(
    "/operators",
    status_code=status.HTTP_201_CREATED,
    response_model=OperatorOut,
    **guard(BOOTSTRAP),
)
async def create_operator(
    body: OperatorCreate, db: Db, settings: Annotated[Settings, Depends(settings_of)]
) -> OperatorOut:
    async with db.control() as session:
        created = OperatorOut.model_validate(await operators.create(session, data=body))
    bootstrap.discard_file(settings.home)  # spent now, where this process can reach it
    return created


@router.get("/operators", response_model=Page[OperatorOut], **guard(OPERATOR))
async def list_operators(db: Db, paging: PageParams) -> Page[OperatorOut]:
    async with db.control() as session:
        rows, next_cursor = await operators.list_operators(
            session, cursor=paging.cursor, limit=paging.limit
        )
    return Page[OperatorOut](
        items=[OperatorOut.model_validate(o) for o in rows],
        next_cursor=next_cursor,
        limit=paging.limit,
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    response_model_exclude_none=True,
    **guard(PUBLIC, 401),
)
async def operator_login(
    body: OperatorLoginIn,
    request: Request,
    db: Db,
    settings: Annotated[Settings, Depends(settings_of)],
) -> TokenOut:
    throttle = request.app.state.login_throttle
    keys = throttle.keys("operators", body.email, client_address(request), operators=True)
    attempt = await throttle.attempt(keys)
    try:
        async with db.control() as session:
            tokens = await operators.login(
                session,
                email=body.email,
                password=body.password,
                settings=settings,
                key=request.app.state.signing_key,
            )
    except BaseException:
        await attempt.give_back()
        raise
    if tokens is None:
        await attempt.failed()
        raise Unauthorized("Invalid credentials.")
    await attempt.succeeded()
    return tokens


@router.post(
    "/tenants/{slug}/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    **guard(OPERATOR),
)
async def create_tenant_user(
    slug: SlugRef, body: UserCreate, operator: Caller, db: Db, request: Request
) -> UserOut:
    async with db.control() as session:
        tenant = await tenants.get_live(session, slug=slug)
    policy = await policy_of(request, tenant.id)
    async with db.tenant(tenant.id) as session:  # in the tenant's cell, with its row there
        tenant = await tenants.get_live(session, slug=slug)
        user = await users.create(
            session,
            tenant_id=tenant.id,
            data=body,
            actor=operator.audit_name,
            actor_role=None,
            quota=policy.limits.users,
        )
        return UserOut.model_validate(user)
