"""`/v1/admin/cells`: the cells tenants can be placed in. Adding one creates and migrates its
database (blocking work, off the event loop) before registering it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, status

from tenantry.api_support import database, settings_of
from tenantry.db.session import Database
from tenantry.errors import Conflict
from tenantry.identity.dependencies import OPERATOR, Caller, guard
from tenantry.pages import Page
from tenantry.settings import Settings
from tenantry.tenants import cells
from tenantry.tenants.schemas import CellIn, CellOut

router = APIRouter(prefix="/v1/admin/cells", tags=["admin: cells"])
Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]


@router.get("", response_model=Page[CellOut], **guard(OPERATOR))
async def list_cells(operator: Caller, db: Db, settings: Config) -> Page[CellOut]:
    async with db.control() as session:
        items = [CellOut.model_validate(c) for c in await cells.placements(session, settings)]
    return Page[CellOut](items=items, next_cursor=None, limit=len(items))


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CellOut, **guard(OPERATOR, 409, 422)
)
async def add_cell(body: CellIn, operator: Caller, db: Db, settings: Config) -> CellOut:
    location = cells.check(settings, name=body.name, database=body.database, url_env=body.url_env)
    async with db.control() as session:
        if await cells.exists(session, name=body.name):
            raise cells.CellExists(f"A cell named '{body.name}' is registered already.")
    if not settings.database_url:
        raise Conflict(
            "This server has no administrative database URL: add cells with `tenantry cells add`.",
            code="cells-need-admin",
        )
    await asyncio.to_thread(cells.provision, settings, settings.database_url, location)
    async with db.control() as session:
        cell = await cells.register(session, name=body.name, location=location, kind=body.kind)
    return CellOut.model_validate(cell)
