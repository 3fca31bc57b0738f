"""Tenant admins: their users and roles, and API keys (the secret shown once, on creation)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from tenantry.console import lists, render
from tenantry.console.common import Db
from tenantry.console.forms import parse
from tenantry.identity import api_keys_api, users_api
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import SCOPE_PERMISSIONS, Permission
from tenantry.identity.schemas import ApiKeyCreate, UserCreate, UserUpdate

router = APIRouter()
ROLES = ("viewer", "member", "admin", "owner")


@router.get("/users", **guard(Permission.USERS_READ))
async def user_list(
    request: Request, subject: Caller, db: Db, cursor: lists.Cursor = None
) -> HTMLResponse:
    found = await lists.users(subject, db, cursor)
    return render.page(
        request,
        "tenant/users.html",
        users=found.items,
        next_cursor=found.next_cursor,
        roles=ROLES,
    )


@router.post("/users", **guard(Permission.USERS_MANAGE))
async def create_user(
    request: Request,
    subject: Caller,
    db: Db,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=512)],
    role: Annotated[str, Form(max_length=32)] = "member",
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    body = parse(
        UserCreate,
        email=email.strip(),
        password=password,
        role=role,
        display_name=display_name.strip() or None,
    )
    created = await users_api.create_user(body, subject, db, request)
    return render.done(request, "/console/users", f"User {created.email} created.")


@router.post("/users/{user_id}/role", **guard(Permission.USERS_MANAGE))
async def change_role(
    request: Request,
    user_id: uuid.UUID,
    subject: Caller,
    db: Db,
    role: Annotated[str, Form(max_length=32)],
) -> Response:
    updated = await users_api.update_user(user_id, parse(UserUpdate, role=role), subject, db)
    return render.done(request, "/console/users", f"{updated.email} is now {updated.role}.")


@router.post("/users/{user_id}/remove", **guard(Permission.USERS_MANAGE))
async def remove_user(request: Request, user_id: uuid.UUID, subject: Caller, db: Db) -> Response:
    await users_api.remove_user(user_id, subject, db)
    return render.done(request, "/console/users", "User removed.")


@router.get("/api-keys", **guard(Permission.API_KEYS_READ))
async def key_list(
    request: Request, subject: Caller, db: Db, cursor: lists.Cursor = None
) -> HTMLResponse:
    return await _keys_page(request, subject, db, cursor)


@router.post("/api-keys", **guard(Permission.API_KEYS_MANAGE))
async def create_key(
    request: Request,
    subject: Caller,
    db: Db,
    name: Annotated[str, Form(max_length=200)],
    scopes: Annotated[list[str], Form(max_length=8)] = [],  # noqa: B006 (FastAPI copies it)
) -> HTMLResponse:
    """The page that shows the new key's secret, this once: it is kept only as a hash."""
    created = await api_keys_api.create_key(
        parse(ApiKeyCreate, name=name.strip(), scopes=scopes), subject, db, request
    )
    return await _keys_page(request, subject, db, None, created=created)


async def _keys_page(request: Request, subject, db, cursor, *, created=None) -> HTMLResponse:
    """The keys, a page at a time; with `created`, its secret too (201: shown this once)."""
    found = await lists.api_keys(subject, db, cursor)
    return render.page(
        request,
        "tenant/api_keys.html",
        status_code=200 if created is None else 201,
        keys=found.items,
        next_cursor=found.next_cursor,
        scopes=tuple(SCOPE_PERMISSIONS),
        created=created,
    )


@router.post("/api-keys/{key_id}/revoke", **guard(Permission.API_KEYS_MANAGE))
async def revoke_key(request: Request, key_id: uuid.UUID, subject: Caller, db: Db) -> Response:
    revoked = await api_keys_api.revoke_key(key_id, subject, db)
    return render.done(request, "/console/api-keys", f"Key {revoked.name} revoked.")
