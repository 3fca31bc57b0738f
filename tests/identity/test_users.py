"""Users per tenant: admins manage them; nobody grants above their own role; one owner always stays."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tenantry.cli.main import app as cli
from tests.conftest import PASSWORD, bearer, login, unique_slug


@pytest.fixture
async def team(client, make_tenant, make_user):
    tenant = await make_tenant()
    owner, admin, viewer = [await make_user(tenant, r) for r in ("owner", "admin", "viewer")]
    tokens = {
        name: bearer((await login(client, tenant, user))["access_token"])
        for name, user in (("owner", owner), ("admin", admin), ("viewer", viewer))
    }
    return tenant, {"owner": owner, "admin": admin, "viewer": viewer}, tokens


async def test_admin_creates_lists_and_changes_users(client, team, admin_sql):
    tenant, _, tokens = team
    created = await client.post(
        "/v1/users",
        json={"email": "New.Person@Example.com", "password": PASSWORD, "role": "member"},
        headers=tokens["admin"],
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "new.person@example.com" and "password" not in json.dumps(user)

    duplicate = await client.post(
        "/v1/users",
        json={"email": "new.person@example.com", "password": PASSWORD},
        headers=tokens["admin"],
    )
    assert duplicate.status_code == 409 and duplicate.json()["type"].endswith("/user-exists")

    listed = (await client.get("/v1/users", headers=tokens["viewer"])).status_code
    assert listed == 403  # viewers see content, not the member list
    page = (await client.get("/v1/users", headers=tokens["admin"])).json()
    assert len(page["items"]) == 4 and page["next_cursor"] is None
    assert "new.person@example.com" in {u["email"] for u in page["items"]}

    promoted = await client.patch(
        f"/v1/users/{user['id']}", json={"role": "admin"}, headers=tokens["admin"]
    )
    assert promoted.json()["role"] == "admin"
    actions = [
        r[0]
        for r in admin_sql.execute(
            "SELECT action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant.id]
        ).fetchall()
    ]
    assert "user.created" in actions and "user.role_changed" in actions

    removed = await client.delete(f"/v1/users/{user['id']}", headers=tokens["admin"])
    assert removed.status_code == 204
    assert (await client.get(f"/v1/users/{user['id']}", headers=tokens["admin"])).status_code == 404


async def test_nobody_grants_above_their_role(client, team):
    _, people, tokens = team
    as_admin = await client.post(
        "/v1/users",
        json={"email": "boss@example.com", "password": PASSWORD, "role": "owner"},
        headers=tokens["admin"],
    )
    assert as_admin.status_code == 403
    demote_owner = await client.patch(
        f"/v1/users/{people['owner'].id}", json={"role": "member"}, headers=tokens["admin"]
    )
    assert demote_owner.status_code == 403
    viewer_creates = await client.post(
        "/v1/users", json={"email": "x@example.com", "password": PASSWORD}, headers=tokens["viewer"]
    )
    assert viewer_creates.status_code == 403


async def test_the_last_owner_cannot_be_demoted_disabled_or_removed(client, team, make_user):
    tenant, people, tokens = team
    owner_id = people["owner"].id
    for method, body in (
        ("PATCH", {"role": "admin"}),
        ("PATCH", {"status": "disabled"}),
        ("DELETE", None),
    ):
        response = await client.request(
            method, f"/v1/users/{owner_id}", json=body, headers=tokens["owner"]
        )
        assert response.status_code == 409, (method, body)
        assert response.json()["type"].endswith("/last-owner")
    second = await make_user(tenant, "owner")
    demoted = await client.patch(
        f"/v1/users/{owner_id}", json={"role": "admin"}, headers=tokens["owner"]
    )
    assert demoted.status_code == 200
    last = await client.delete(f"/v1/users/{second.id}", headers=tokens["owner"])
    assert last.status_code == 403  # the former owner is an admin now: no reach over owners


async def test_an_operator_creates_the_first_owner(client, make_tenant, operator_headers):
    tenant = await make_tenant()
    created = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/users",
        json={"email": "founder@example.com", "password": PASSWORD, "role": "owner"},
        headers=operator_headers,
    )
    assert created.status_code == 201 and created.json()["role"] == "owner"
    tokens = await client.post(
        "/v1/auth/login",
        json={"tenant": tenant.slug, "email": "founder@example.com", "password": PASSWORD},
    )
    assert tokens.status_code == 200


def test_cli_creates_a_user_reading_the_password_from_stdin(stack, admin_sql, settings):
    runner = CliRunner()
    slug = unique_slug("cliu")
    assert runner.invoke(cli, ["tenants", "create", slug, "--name", "Cli"]).exit_code == 0
    result = runner.invoke(
        cli,
        [
            "users",
            "create",
            "--tenant",
            slug,
            "--email",
            "owner@example.com",
            "--role",
            "owner",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["role"] == "owner"
    weak = runner.invoke(
        cli,
        ["users", "create", "--tenant", slug, "--email", "weak@example.com", "--password-stdin"],
        input="weak\n",
    )
    assert weak.exit_code == 1 and "min_length" in weak.stderr
    prompted = runner.invoke(
        cli,
        ["users", "create", "--tenant", slug, "--email", "typed@example.com"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert prompted.exit_code == 0, prompted.output
