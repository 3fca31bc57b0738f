"""Serialisation failures and deadlocks between real transactions are retried, a bounded number of
times, by requests, activities and CLI commands alike; when the retries run out the answer is a
503 problem with Retry-After, never a 500."""

from __future__ import annotations

import asyncio
from collections import Counter

import psycopg
import pytest
from fastapi import Request
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from tenantry.db.retry import RetryPolicy, is_retryable
from tenantry.db.urls import libpq_dsn
from tenantry.tenants.models import Tenant

QUICK = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.01)


def _interfere(stack, tenant_id) -> None:
    """Another transaction commits a change to the row in between (a separate connection)."""
    with psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True) as conn:
        conn.execute("UPDATE tenants SET name = name || '.' WHERE id = %s", [tenant_id])


async def _read_then_write(session, stack, tenant_id, *, interfere: bool) -> None:
    """Repeatable read: a row changed by another transaction since our snapshot cannot be
    updated (SQLSTATE 40001)."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    name = await session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))
    if interfere:
        await asyncio.to_thread(_interfere, stack, tenant_id)
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(name=name + "!"))


async def test_a_real_deadlock_between_two_transactions_is_retried(db, make_tenant):
    first, second = await make_tenant(), await make_tenant()
    attempts: Counter[str] = Counter()
    holding = {"a": asyncio.Event(), "b": asyncio.Event()}

    def crossing(name: str, mine, theirs, other: str):
        async def body(session):
            attempts[name] += 1
            await session.execute(update(Tenant).where(Tenant.id == mine.id).values(name=name))
            if attempts[name] == 1:  # the first time, wait until each holds its own row
                holding[name].set()
                await holding[other].wait()
            await session.execute(update(Tenant).where(Tenant.id == theirs.id).values(name=name))
            return name

        return body

    done = await asyncio.gather(
        db.run(crossing("a", first, second, "b"), control=True),
        db.run(crossing("b", second, first, "a"), control=True),
    )
    assert sorted(done) == ["a", "b"]
    # PostgreSQL chose one of them as the deadlock's victim; that one ran twice.
    assert sum(attempts.values()) == 3


async def test_the_classifier_sees_through_sqlalchemy(db, stack, make_tenant):
    tenant = await make_tenant()
    with pytest.raises(DBAPIError) as raised:
        async with db.control() as session:
            await _read_then_write(session, stack, tenant.id, interfere=True)
    assert isinstance(raised.value.orig, psycopg.errors.SerializationFailure)
    assert is_retryable(raised.value)
    assert is_retryable(raised.value.orig)
    assert not is_retryable(ValueError("40001"))


async def test_run_retries_a_serialisation_failure(db, stack, make_tenant):
    tenant = await make_tenant()
    calls = []

    async def body(session):
        calls.append(1)
        await _read_then_write(session, stack, tenant.id, interfere=len(calls) == 1)
        return len(calls)

    assert await db.run(body, control=True) == 2


@pytest.fixture
async def conflicting_app(stack, settings, make_tenant):
    """A second app with one extra route that collides with another transaction on demand."""
    from tenantry.app import create_app

    tenant = await make_tenant()
    app = create_app(settings, database_url=stack.app_url)
    state = {"attempts": 0, "fail": 0}

    async def conflicting(request: Request):
        body = await request.json()  # read before the failure: the retry must see it again
        state["attempts"] += 1
        async with request.app.state.db.control() as session:
            await _read_then_write(
                session, stack, tenant.id, interfere=state["attempts"] <= state["fail"]
            )
        return {"attempts": state["attempts"], "echo": body}

    app.add_api_route("/test/conflict", conflicting, methods=["POST"])
    async with app.router.lifespan_context(app):
        app.state.db.retry = QUICK
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            yield client, state


async def test_a_request_is_replayed_with_its_body(conflicting_app):
    client, state = conflicting_app
    state["fail"] = 1
    response = await client.post("/test/conflict", json={"hello": "world"})
    assert response.status_code == 200, response.text
    assert response.json() == {"attempts": 2, "echo": {"hello": "world"}}


async def test_exhausted_retries_are_a_503_problem_with_retry_after(conflicting_app):
    client, state = conflicting_app
    state["fail"] = 99
    response = await client.post("/test/conflict", json={"n": 1})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["type"] == "https://tenantry.dev/problems/transaction-conflict"
    assert state["attempts"] == QUICK.attempts


async def test_an_activity_is_retried_by_the_worker_interceptor(
    db, stack, make_tenant, monkeypatch
):
    from tenantry.worker.retry import RetryTransactions

    tenant = await make_tenant()
    monkeypatch.setattr(db, "retry", QUICK)
    calls = []

    class Activity:  # the end of Temporal's interceptor chain: runs the activity
        async def execute_activity(self, input):
            calls.append(input)
            async with db.control() as session:
                await _read_then_write(session, stack, tenant.id, interfere=len(calls) == 1)
            return "done"

    inbound = RetryTransactions(db).intercept_activity(Activity())
    assert await inbound.execute_activity("job") == "done"
    assert calls == ["job", "job"]


def test_a_cli_command_is_retried(stack, make_tenant_sync):
    from tenantry.cli.common import run_with_db

    slug = make_tenant_sync()
    calls = []

    async def work(db, _stack):
        calls.append(1)
        async with db.control() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
        async with db.control() as session:
            await _read_then_write(session, stack, tenant_id, interfere=len(calls) == 1)
        return len(calls)

    assert run_with_db(work) == 2
