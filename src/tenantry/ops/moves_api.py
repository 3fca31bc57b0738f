"""`/v1/admin/tenants/{slug}/moves`: operators move a tenant to another cell and follow the move.

Requesting one records it and starts its workflow through the outbox; the copy runs in a worker,
and the record shows its stage and progress while it runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from tenantry.api_support import database, settings_of
from tenantry.api_types import SlugRef
from tenantry.db.session import Database
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.ops import moves
from tenantry.ops.schemas import MoveIn, MoveOut
from tenantry.pages import Page, PageParams
from tenantry.settings import Settings
from tenantry.tenants import service as tenants

router = APIRouter(prefix="/v1/admin/tenants/{slug}/moves", tags=["admin: cells"])
Db = Annotated[Database, Depends(database)]


@router.post(
    "", status_code=status.HTTP_202_ACCEPTED, response_model=MoveOut, **guard(OPERATOR, 409, 422)
)
async def request_move(
    slug: SlugRef,
    body: MoveIn,
    operator: Caller,
    db: Db,
    settings: Annotated[Settings, Depends(settings_of)],
) -> MoveOut:
    async with db.control() as session:
        move = await moves.request_move(
            session,
            slug=slug,
            cell=body.cell,
            actor=operator.audit_name,
            settings=settings,
            namespace=body.namespace,
        )
    if move.source != settings.cell:
        async with db.tenant(move.tenant) as session:
            await moves.enqueue(session, move=move)
    return MoveOut.model_validate(move)


@router.get("", response_model=Page[MoveOut], **guard(OPERATOR))
async def list_moves(slug: SlugRef, operator: Caller, db: Db, paging: PageParams) -> Page[MoveOut]:
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
        rows, next_cursor = await moves.list_moves(
            session, tenant_id=tenant.id, cursor=paging.cursor, limit=paging.limit
        )
    return Page[MoveOut](
        items=[MoveOut.model_validate(m) for m in rows], next_cursor=next_cursor, limit=paging.limit
    )


@router.get("/{move_id}", response_model=MoveOut, **guard(OPERATOR))
async def show_move(slug: SlugRef, move_id: uuid.UUID, operator: Caller, db: Db) -> MoveOut:
    async with db.control() as session:
        tenant = await tenants.get(session, slug=slug)
        move = await moves.get_move(session, tenant_id=tenant.id, move_id=move_id)
    return MoveOut.model_validate(move)
