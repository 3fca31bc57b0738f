"""The operator bootstrap token: a file only its owner reads (never printed), 24 hours at most,
rotatable, and closed for good once the first operator exists. A PostgreSQL of its own: the
session's already has operators."""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.cli.main import app as cli
from tenantry.db.base import utcnow
from tenantry.db.urls import libpq_dsn
from tenantry.identity import bootstrap
from tenantry.runtime.supervisor import _bootstrap_lines
from tenantry.settings import Settings
from tenantry.stack import provision_defaults, start_database
from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow

GIVEN = "tnop_set-by-the-deployment-0123456789abcdef"


@pytest.fixture(scope="module")
async def fresh():
    # Not under pytest's tmp_path: the embedded server runs as another user when tests run as root.
    home = Path(tempfile.mkdtemp(prefix="tenantry-bootstrap-"))
    settings = Settings(
        home=home,
        environment="test",
        database_url=None,
        temporal_address=None,
        redis_url=None,
        bootstrap_token=None,
        demo_tenants=False,
        loop_lag_threshold_ms=60_000,
    )
    stack = start_database(settings)
    app = create_app(settings, database_url=stack.app_url)
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client,
        ):
            yield stack, client
    finally:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)


def as_admin(stack, statement: str, params=()) -> None:
    with psycopg.connect(libpq_dsn(stack.admin_url), autocommit=True) as conn:
        conn.execute(statement, params)


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_generated_token_is_a_private_file_that_lasts_a_day_and_rotates(fresh):
    stack, client = fresh
    started = await provision_defaults(stack)
    token_file = stack.settings.home / "bootstrap_token"
    assert (started.bootstrap.state, started.bootstrap.path) == ("written", token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("tnop_")
    assert timedelta(hours=23) < started.bootstrap.expires_at - utcnow() <= timedelta(hours=24)
    banner = "\n".join(_bootstrap_lines(started.bootstrap))
    assert str(token_file) in banner and token not in banner

    # It only creates operators.
    for path in ("/v1/admin/tenants", "/v1/admin/operators"):
        refused = await client.get(path, headers=token_header(token))
        assert refused.status_code == 403 and "create operators" in refused.json()["detail"]
    weak = {"email": "w@tenantry.dev", "name": "W", "password": "short"}
    accepted = await client.post("/v1/admin/operators", json=weak, headers=token_header(token))
    assert accepted.status_code == 422  # authenticated; only the password was refused

    restarted = await provision_defaults(stack)
    assert restarted.bootstrap.state == "kept" and token_file.read_text().strip() == token

    as_admin(
        stack,
        "UPDATE operator_tokens SET expires_at = now() - interval '1 second' "
        "WHERE name = 'bootstrap'",
    )
    expired = await client.post("/v1/admin/operators", json=weak, headers=token_header(token))
    assert expired.status_code == 401
    after_a_day = await provision_defaults(stack)
    assert after_a_day.bootstrap.state == "expired"
    assert "bootstrap-token --rotate" in "\n".join(_bootstrap_lines(after_a_day.bootstrap))

    db = stack.database()
    try:
        async with db.control() as session:
            rotated = await bootstrap.rotate(session, home=stack.settings.home)
    finally:
        await db.dispose()
    new_token = token_file.read_text().strip()
    assert rotated.state == "written" and new_token != token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    old = await client.post("/v1/admin/operators", json=weak, headers=token_header(token))
    new = await client.post("/v1/admin/operators", json=weak, headers=token_header(new_token))
    assert (old.status_code, new.status_code) == (401, 422)


async def test_a_token_the_deployment_sets_works_until_the_first_operator_exists(fresh):
    stack, client = fresh
    token_file = stack.settings.home / "bootstrap_token"
    generated = token_file.read_text().strip() if token_file.exists() else "tnop_none"
    given = await provision_defaults(
        stack.__class__(
            stack.settings.model_copy(update={"bootstrap_token": SecretStr(GIVEN)}),
            stack.admin_url,
            stack.app_url,
        )
    )
    assert given.bootstrap.state == "given" and not token_file.exists()
    account = {"email": "first@tenantry.dev", "name": "First", "password": PASSWORD}
    assert (
        await client.post("/v1/admin/operators", json=account, headers=token_header(generated))
    ).status_code == 401
    created = await client.post("/v1/admin/operators", json=account, headers=token_header(GIVEN))
    assert created.status_code == 201, created.text

    second = {**account, "email": "second@tenantry.dev"}
    closed = await client.post("/v1/admin/operators", json=second, headers=token_header(GIVEN))
    assert closed.status_code == 401
    assert (await provision_defaults(stack)).bootstrap.state == "closed"
    db = stack.database()
    try:
        async with db.control() as session:
            with pytest.raises(bootstrap.BootstrapClosed):
                await bootstrap.rotate(session, home=stack.settings.home)
    finally:
        await db.dispose()
    assert not token_file.exists()

    # From now on operators create operators.
    login = await client.post(
        "/v1/admin/auth/login", json={"email": account["email"], "password": PASSWORD}
    )
    operator = token_header(login.json()["access_token"])
    assert (
        await client.post("/v1/admin/operators", json=second, headers=operator)
    ).status_code == 201


def test_the_cli_names_the_state_and_refuses_to_rotate_once_operators_exist(operator_headers):
    shown = CliRunner().invoke(cli, ["operators", "bootstrap-token"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {"state": "closed", "path": None, "expires_at": None}
    rotated = CliRunner().invoke(cli, ["operators", "bootstrap-token", "--rotate"])
    assert rotated.exit_code == 1 and "Operators exist" in rotated.stderr
