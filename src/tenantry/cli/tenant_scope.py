"""A command's transaction of one tenant, wherever it is placed: the tenant found on the control
plane, then the work done in a transaction of the tenant, which lands in its cell (where its
rows are), with the tenant's row there locked as for any change of its own rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.session import Database
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant


@asynccontextmanager
async def tenant_scope(db: Database, slug: str) -> AsyncIterator[tuple[Tenant, AsyncSession]]:
    """(the tenant as the control plane has it, a session of its transaction). Unknown and
    deleted tenants are refused on the control plane, whose row is the one of record (a cell's
    copy may be a sweep behind); the row in the tenant's cell is locked, and checked again."""
    async with db.control() as session:
        tenant = await tenants.get_live(session, slug=slug)
    async with db.tenant(tenant.id) as session:
        await tenants.get_live(session, slug=slug)
        yield tenant, session
