"""The tenant context: raises when unset, nests and restores, follows tasks, decorates."""

from __future__ import annotations

import asyncio
import contextvars
import types
import uuid

import pytest

from tenantry.errors import TenantContextMissing
from tenantry.tenancy.context import TenantRef, current_tenant, tenant_context

A = TenantRef(uuid.uuid4(), "alpha", "free")
B = TenantRef(uuid.uuid4(), "bravo", "enterprise")


def test_unset_raises():
    with pytest.raises(TenantContextMissing):
        current_tenant()


def test_nested_contexts_restore_the_previous_tenant():
    with tenant_context(A):
        with tenant_context(B):
            assert current_tenant() is B
        assert current_tenant() is A
    with pytest.raises(TenantContextMissing):
        current_tenant()


def test_restored_after_an_exception():
    with pytest.raises(ValueError), tenant_context(A):
        raise ValueError
    with pytest.raises(TenantContextMissing):
        current_tenant()


async def test_tasks_inherit_the_tenant_and_do_not_leak_back():
    async def child() -> str:
        slug = current_tenant().slug
        with tenant_context(B):
            await asyncio.sleep(0)
        return slug

    async with tenant_context(A):
        slugs = await asyncio.gather(*(asyncio.create_task(child()) for _ in range(5)))
        assert current_tenant() is A
    assert slugs == ["alpha"] * 5


def test_a_coroutine_closed_in_another_context_leaves_that_context_alone():
    """A workflow evicted from a stopped worker's cache is closed by the garbage collector, in
    whatever context is current then: its exit neither raises nor changes that context."""

    @types.coroutine
    def suspend():
        yield

    async def holds_a_tenant():
        with tenant_context(A):
            await suspend()

    started = holds_a_tenant()
    contextvars.copy_context().run(started.send, None)  # suspended inside, in a context of its own
    with tenant_context(B):
        started.close()  # GeneratorExit at the await
        assert current_tenant() is B


def test_a_token_from_another_context_still_raises_otherwise():
    entered = tenant_context(A)
    contextvars.copy_context().run(entered.__enter__)
    with pytest.raises(ValueError):
        entered.__exit__(None, None, None)


async def test_decorator_on_sync_and_async_functions():
    @tenant_context(A)
    def sync_fn() -> str:
        return current_tenant().slug

    @tenant_context(B)
    async def async_fn() -> str:
        return current_tenant().slug

    assert sync_fn() == "alpha"
    assert await async_fn() == "bravo"
    with pytest.raises(TenantContextMissing):
        current_tenant()


async def test_a_tenant_session_uses_the_context(db, make_tenant, admin_sql):
    from sqlalchemy import text

    from tenantry.tenants.service import ref

    tenant = await make_tenant()
    with tenant_context(ref(tenant)):
        async with db.tenant() as session:
            setting = await session.scalar(text("SELECT current_setting('tenantry.tenant_id')"))
    assert setting == str(tenant.id)
    with pytest.raises(TenantContextMissing):
        async with db.tenant():
            pass
