"""What the console's configuration pages share beyond the API's writes
(`config.api.new_version`, for a tenant admin's own tenant or an operator's any)."""

from __future__ import annotations

import uuid

from tenantry.config import service
from tenantry.db.session import Database


async def diff(db: Database, *, tenant_id: uuid.UUID, before: int, after: int) -> dict:
    async with db.tenant(tenant_id) as session:
        return await service.diff_versions(session, tenant_id=tenant_id, before=before, after=after)
