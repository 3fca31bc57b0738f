"""Read-only transactions on a streaming standby, with read-your-writes.

The standby is made from the session's embedded PostgreSQL with `pg_basebackup -R`. For the
module, the primary names it a synchronous standby, so a write committed with
`synchronous_commit=remote_apply` returns only once the standby has replayed it: the tests know
the standby is caught up without waiting on a clock. Pausing replay (`pg_wal_replay_pause()`)
makes it lag at will.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from tenantry.db.replica import reading_after, sign_position, verify_position
from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import libpq_dsn, replica_app_url
from tenantry.identity import users
from tenantry.identity.schemas import UserCreate
from tests.conftest import PASSWORD, bearer
from tests.db.standby import Standby, start_standby

pytestmark = pytest.mark.slow
CAUGHT_UP = {"synchronous_commit": "remote_apply"}


def _primary(stack, statement: str) -> None:
    with psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True) as conn:
        conn.execute(statement)
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="module")
def standby(stack):
    replica = start_standby(stack.admin_url)
    _primary(stack, "ALTER SYSTEM SET synchronous_standby_names = '*'")
    try:
        yield replica
    finally:
        _primary(stack, "ALTER SYSTEM RESET synchronous_standby_names")
        replica.stop()


@pytest.fixture
async def routed(stack, settings, standby: Standby):
    """A `Database` with the standby as its read replica, as `create_app` builds it."""
    url = replica_app_url(settings.model_copy(update={"replica_database_url": standby.admin_url}))
    db = Database(
        create_app_engine(stack.app_url, pool_size=2, max_overflow=0),
        replica=create_app_engine(url, pool_size=2, max_overflow=0),
    )
    yield db
    await db.dispose()
    await db.replica.dispose()


@pytest.fixture
def paused(standby: Standby):
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        yield standby
    finally:
        standby.sql("SELECT pg_wal_replay_resume()")


async def _add_user(db: Database, tenant, *, local_settings=None) -> str:
    email = f"r-{uuid.uuid4().hex[:8]}@example.com"
    data = UserCreate(email=email, password=PASSWORD, role="member")
    async with db.tenant(tenant.id, local_settings=local_settings) as session:
        await users.create(session, tenant_id=tenant.id, data=data, actor="test", actor_role=None)
    return email


async def _read(db: Database, tenant) -> tuple[bool, set[str]]:
    """Whether the read-only transaction ran on a standby, and the emails it saw."""
    async with db.tenant(tenant.id, readonly=True) as session:
        on_standby = await session.scalar(text("SELECT pg_is_in_recovery()"))
        emails = set((await session.scalars(text("SELECT email FROM users"))).all())
    return on_standby, emails


async def test_a_caught_up_replica_serves_the_read_and_it_sees_the_callers_write(
    routed, make_tenant
):
    tenant = await make_tenant()
    with reading_after() as position:
        email = await _add_user(routed, tenant, local_settings=CAUGHT_UP)
        assert position.wrote and position.lsn > 0
        on_standby, emails = await _read(routed, tenant)
    assert on_standby is True
    assert email in emails


async def test_a_lagging_replica_is_bypassed_by_the_caller_who_wrote(routed, make_tenant, paused):
    tenant = await make_tenant()
    with reading_after():
        email = await _add_user(routed, tenant)
        on_standby, emails = await _read(routed, tenant)
    assert on_standby is False  # the primary, since the standby has not replayed the write
    assert email in emails
    # A caller who wrote nothing reads the standby as it is: the write is not there yet.
    with reading_after():
        on_standby, emails = await _read(routed, tenant)
    assert on_standby is True
    assert email not in emails


async def test_rls_holds_on_the_replica_and_it_is_never_written(routed, make_tenant):
    mine, other = await make_tenant(), await make_tenant()
    with reading_after():
        own = await _add_user(routed, mine, local_settings=CAUGHT_UP)
        theirs = await _add_user(routed, other, local_settings=CAUGHT_UP)
        on_standby, emails = await _read(routed, mine)
    assert on_standby is True
    assert own in emails and theirs not in emails
    with pytest.raises(Exception, match="read-only transaction"):
        await _add_user_readonly(routed, mine)


async def _add_user_readonly(db: Database, tenant) -> None:
    async with db.tenant(tenant.id, readonly=True) as session:
        await session.execute(text("UPDATE users SET email = email"))


async def test_an_unreachable_replica_sends_reads_to_the_primary(stack, make_tenant):
    tenant = await make_tenant()
    gone = create_app_engine(
        replica_app_url_for(stack, "/nonexistent-socket-dir"), pool_size=1, max_overflow=0
    )
    db = Database(create_app_engine(stack.app_url, pool_size=1, max_overflow=0), replica=gone)
    try:
        with reading_after():
            on_standby, _ = await _read(db, tenant)
        assert on_standby is False
    finally:
        await db.dispose()
        await gone.dispose()


def replica_app_url_for(stack, socket_dir: str):
    from sqlalchemy.engine import make_url

    return make_url(stack.app_url).update_query_dict({"host": socket_dir})


def test_a_position_token_is_read_back_only_when_signed_with_the_key():
    key = b"k" * 32
    token = sign_position(0x16B374D848, key)
    assert token.startswith("16/B374D848.")
    assert verify_position(token, key) == 0x16B374D848
    assert verify_position(token, b"x" * 32) == 0
    forged = "FFFFFFFF/0." + token.split(".")[1]
    assert verify_position(forged, key) == 0
    assert verify_position("garbage", key) == 0


async def test_over_http_the_session_token_carries_a_write_to_the_next_request(
    stack, settings, standby, make_tenant, make_user, temporal_client, paused
):
    """With replay paused: a client that keeps its cookie (or echoes the header) reads its new
    API key from the primary; a client without either reads the standby, which lacks it."""
    from tenantry.app import create_app

    configured = settings.model_copy(update={"replica_database_url": standby.admin_url})
    app = create_app(configured, database_url=stack.app_url)
    tenant = await make_tenant()
    admin = await make_user(tenant, role="admin")
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, client=("198.51.100.77", 50000))
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            login = await client.post(
                "/v1/auth/login",
                json={"tenant": tenant.slug, "email": admin.email, "password": PASSWORD},
            )
            assert login.status_code == 200, login.text
            auth = bearer(login.json()["access_token"])
            created = await client.post(
                "/v1/api-keys", json={"name": "fresh", "scopes": ["read"]}, headers=auth
            )
            assert created.status_code == 201, created.text
            token = created.headers["tenantry-read-after"]
            assert client.cookies["tenantry_read_after"] == token

            with_cookie = await client.get("/v1/api-keys", headers=auth)
            client.cookies.clear()
            with_header = await client.get(
                "/v1/api-keys", headers={**auth, "Tenantry-Read-After": token}
            )
            without = await client.get("/v1/api-keys", headers=auth)
    names = [[k["name"] for k in r.json()["items"]] for r in (with_cookie, with_header, without)]
    assert "fresh" in names[0] and "fresh" in names[1]
    assert "fresh" not in names[2]
