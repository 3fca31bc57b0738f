"""The current tenant, carried by a context variable through requests, tasks and activities.

asyncio copies the context into every task it creates, so a tenant set before `create_task` or
`gather` is the tenant inside them.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from tenantry.errors import TenantContextMissing


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: uuid.UUID
    slug: str
    tier: str


_current: ContextVar[TenantRef | None] = ContextVar("tenantry_tenant", default=None)


def current_tenant() -> TenantRef:
    tenant = _current.get()
    if tenant is None:
        raise TenantContextMissing("No tenant in context: this code must run for a tenant.")
    return tenant


def current_tenant_or_none() -> TenantRef | None:
    return _current.get()


def set_current_tenant(tenant: TenantRef | None) -> Token:
    return _current.set(tenant)


def reset_current_tenant(token: Token) -> None:
    _current.reset(token)


class tenant_context:
    """`with tenant_context(t):` or `@tenant_context(t)`; the previous tenant is restored on exit."""

    def __init__(self, tenant: TenantRef) -> None:
        self.tenant = tenant
        self._tokens: list[Token] = []

    def __enter__(self) -> TenantRef:
        self._tokens.append(_current.set(self.tenant))
        return self.tenant

    def __exit__(self, exc_type: object, *exc: object) -> None:
        token = self._tokens.pop()
        try:
            _current.reset(token)
        except ValueError:
            # A coroutine closed by the garbage collector (a workflow evicted from a stopped
            # worker's cache) exits in whatever context is current then; its own is gone.
            if exc_type is not GeneratorExit:
                raise

    async def __aenter__(self) -> TenantRef:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __call__(self, func: Any) -> Any:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with tenant_context(self.tenant):
                    return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with tenant_context(self.tenant):
                return func(*args, **kwargs)

        return wrapper
