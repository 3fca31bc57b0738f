"""A task cancelled in the middle of a transaction ends with its cancellation, whatever the
cancellation did to the connection: a loop that retries database errors (the relay, the usage
meter) must not take it for one of those, or it would never stop."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text


@pytest.mark.parametrize("opening", ["tenant", "control"])
async def test_a_transaction_cancelled_mid_query_raises_the_cancellation(
    db, make_tenant, admin_sql, opening
):
    tenant = await make_tenant()
    started = asyncio.Event()

    async def work() -> None:
        scope = db.tenant(tenant.id) if opening == "tenant" else db.control()
        async with scope as session:
            started.set()
            await session.execute(text("SELECT pg_sleep(60)"))

    task = asyncio.create_task(work())
    await started.wait()  # the task is suspended in its query once this returns
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # And the pool goes on: the next transaction works.
    async with db.tenant(tenant.id) as session:
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
