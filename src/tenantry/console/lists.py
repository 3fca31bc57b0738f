"""Every list the console pages through, in one place and one shape: (items, next cursor).

The pages pass the API's own opaque keyset cursors through: a cursor the console hands out is the
`next_cursor` of the handler's page, and one it gets back is checked by the handler (a made-up
cursor is a 422 naming `query.cursor`, as it is over the API).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query

from tenantry.config import admin_api as tiers_api
from tenantry.config import service as config_service
from tenantry.db.session import Database
from tenantry.events import api as webhooks_api
from tenantry.identity import admin_api as operators_api
from tenantry.identity import api_keys_api, users_api
from tenantry.incidents import api as incidents_api
from tenantry.knowledge import api as knowledge_api
from tenantry.pages import MAX_LIMIT, PageQuery
from tenantry.tenants import api as tenants_api

PAGE_SIZE = 25
Cursor = Annotated[str | None, Query(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$")]


@dataclass(frozen=True)
class Listing:
    items: list[Any]
    next_cursor: str | None


def _paging(cursor: str | None, size: int = PAGE_SIZE) -> PageQuery:
    return PageQuery(cursor=cursor or None, limit=size)


def _listing(page: Any) -> Listing:
    return Listing(list(page.items), page.next_cursor)


async def users(subject, db: Database, cursor: str | None) -> Listing:
    return _listing(await users_api.list_users(subject, db, _paging(cursor)))


async def api_keys(subject, db: Database, cursor: str | None) -> Listing:
    return _listing(await api_keys_api.list_keys(subject, db, _paging(cursor)))


async def documents(subject, db: Database, cursor: str | None) -> Listing:
    return _listing(await knowledge_api.list_documents(subject, db, _paging(cursor), None, None))


async def incidents(subject, db: Database, cursor: str | None, status: str | None) -> Listing:
    found = await incidents_api.list_incidents(subject, db, _paging(cursor), status, None, None)
    return _listing(found)


async def deliveries(subject, db: Database, endpoint_id: uuid.UUID, cursor: str | None) -> Listing:
    return _listing(await webhooks_api.list_deliveries(endpoint_id, subject, db, _paging(cursor)))


async def config_versions(
    db: Database, tenant_id: uuid.UUID, cursor: str | None, size: int = PAGE_SIZE
) -> Listing:
    async with db.tenant(tenant_id) as session:
        rows, next_cursor = await config_service.list_versions(
            session, tenant_id=tenant_id, cursor=cursor or None, limit=size
        )
    return Listing(rows, next_cursor)


async def audit_events(
    operator, db: Database, slug: str, cursor: str | None, size: int = PAGE_SIZE
) -> Listing:
    return _listing(await tenants_api.tenant_audit(slug, operator, db, _paging(cursor, size)))


async def _every(fetch) -> list[Any]:
    """All of a short list (tiers, operators, a tenant's webhook endpoints), page after page."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = await fetch(PageQuery(cursor=cursor, limit=MAX_LIMIT))
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


async def all_tiers(db: Database) -> list[Any]:
    return await _every(lambda paging: tiers_api.list_tiers(db, paging))


async def all_operators(db: Database) -> list[Any]:
    return await _every(lambda paging: operators_api.list_operators(db, paging))


async def all_endpoints(subject, db: Database) -> list[Any]:
    return await _every(lambda paging: webhooks_api.list_endpoints(subject, db, paging))
