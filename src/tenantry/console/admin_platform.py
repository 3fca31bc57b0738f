"""Operators: tier templates, operator accounts and the billing export."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Config, Db
from tenantry.console.forms import parse
from tenantry.db.base import utcnow
from tenantry.identity import admin_api as operators_api
from tenantry.identity.dependencies import OPERATOR, guard
from tenantry.identity.schemas import OperatorCreate
from tenantry.limits import api as limits_api
from tenantry.pages import MAX_LIMIT, PageQuery

router = APIRouter(prefix="/admin")
Day = Annotated[date | None, Query()]


@router.get("/tiers", **guard(OPERATOR))
async def tiers(request: Request, db: Db) -> HTMLResponse:
    return render.page(request, "admin/tiers.html", tiers=await lists.all_tiers(db))


@router.get("/operators", **guard(OPERATOR))
async def operator_list(request: Request, db: Db) -> HTMLResponse:
    return render.page(request, "admin/operators.html", operators=await lists.all_operators(db))


@router.post("/operators", **guard(OPERATOR))
async def create_operator(
    request: Request,
    db: Db,
    settings: Config,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=512)],
) -> Response:
    body = parse(OperatorCreate, email=email.strip(), name=name.strip(), password=password)
    created = await operators_api.create_operator(body, db, settings)
    return render.done(request, "/console/admin/operators", f"Operator {created.email} created.")


@router.get("/usage", **guard(OPERATOR))
async def billing(request: Request, start: Day = None, end: Day = None) -> HTMLResponse:
    end = end or utcnow().date()
    start = start or end - timedelta(days=30)
    return render.page(request, "admin/billing.html", start=start, end=end)


@router.get("/usage.csv", **guard(OPERATOR))
async def billing_csv(request: Request, db: Db, start: Day = None, end: Day = None) -> Response:
    """The API's own CSV export, downloaded from the browser with the console's session."""
    every_row = PageQuery(cursor=None, limit=MAX_LIMIT)  # a CSV export is never paged
    return await limits_api.usage_export(db, request, every_row, start, end, "csv")
