"""FastAPI dependencies shared by every router: the database, the settings, tenant policies.

`async def`, so FastAPI calls them on the event loop instead of through its thread pool.
"""

from __future__ import annotations

from fastapi import Request

from tenantry.db.session import Database
from tenantry.egress.policy import EgressPolicy
from tenantry.settings import Settings


async def database(request: Request) -> Database:
    return request.app.state.db


async def settings_of(request: Request) -> Settings:
    return request.app.state.settings


async def egress_policy(request: Request) -> EgressPolicy:
    return request.app.state.egress_policy


async def policy_of(request: Request, tenant_id):
    """The tenant's cached policy (limits and effective configuration)."""
    return await request.app.state.policies.get(tenant_id)


def forget_cached(request: Request, prefix: str) -> None:
    """After a change committed here: drop this process's copy at once (others hear NOTIFY)."""
    request.app.state.config_cache.invalidate(prefix)
