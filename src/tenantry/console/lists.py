"""Every list the console pages through, in one place and one shape: (items, next cursor).

The pages pass an opaque `cursor` as the API's lists do. Here it is the API handlers' offset,
written as a number; when the handlers page by keyset cursor instead, only this module changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

from tenantry.config import service as config_service
from tenantry.db.session import Database
from tenantry.errors import ValidationFailed
from tenantry.events import api as webhooks_api
from tenantry.identity import api_keys_api, users_api
from tenantry.incidents import api as incidents_api
from tenantry.knowledge import api as knowledge_api
from tenantry.tenants import api as tenants_api

PAGE_SIZE = 25
Cursor = Annotated[str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$")]


@dataclass(frozen=True)
class Listing:
    items: list[Any]
    next_cursor: str | None


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise ValidationFailed(
            "That is not a cursor this list gave out.",
            errors=[{"field": "query.cursor", "message": "unknown cursor"}],
        )
    return int(cursor)


def _listing(items: list[Any], total: int, offset: int) -> Listing:
    following = offset + len(items)
    return Listing(items, str(following) if following < total else None)


async def users(subject, db: Database, cursor: str | None) -> Listing:
    offset = _offset(cursor)
    found = await users_api.list_users(subject, db, limit=PAGE_SIZE, offset=offset)
    return _listing(found.items, found.total, offset)


async def api_keys(subject, db: Database, cursor: str | None) -> Listing:
    offset = _offset(cursor)
    found = await api_keys_api.list_keys(subject, db, limit=PAGE_SIZE, offset=offset)
    return _listing(found.items, found.total, offset)


async def documents(subject, db: Database, cursor: str | None) -> Listing:
    offset = _offset(cursor)
    found = await knowledge_api.list_documents(
        subject, db, None, None, limit=PAGE_SIZE, offset=offset
    )
    return _listing(found.items, found.total, offset)


async def incidents(subject, db: Database, cursor: str | None, status: str | None) -> Listing:
    offset = _offset(cursor)
    found = await incidents_api.list_incidents(
        subject, db, status, None, None, limit=PAGE_SIZE, offset=offset
    )
    return _listing(found.items, found.total, offset)


async def deliveries(subject, db: Database, endpoint_id: uuid.UUID, cursor: str | None) -> Listing:
    offset = _offset(cursor)
    found = await webhooks_api.list_deliveries(
        endpoint_id, subject, db, limit=PAGE_SIZE, offset=offset
    )
    return _listing(found.items, found.total, offset)


async def config_versions(
    db: Database, tenant_id: uuid.UUID, cursor: str | None, size: int = PAGE_SIZE
) -> Listing:
    offset = _offset(cursor)
    async with db.tenant(tenant_id) as session:
        rows, total = await config_service.list_versions(
            session, tenant_id=tenant_id, limit=size, offset=offset
        )
    return _listing(rows, total, offset)


async def audit_events(
    operator, db: Database, slug: str, cursor: str | None, size: int = PAGE_SIZE
) -> Listing:
    offset = _offset(cursor)
    found = await tenants_api.tenant_audit(slug, operator, db, limit=size, offset=offset)
    return _listing(found.items, found.total, offset)
