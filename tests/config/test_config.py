"""Per-tenant configuration: layers with sources, validation naming the path, versions, diff,
rollback, tier templates, and the CLI."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from tenantry.cli.main import app as cli
from tests.conftest import bearer, login


@pytest.fixture
async def admin(client, make_tenant, make_user):
    tenant = await make_tenant(tier="standard")
    user = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, user))["access_token"])


@pytest.fixture
async def standard_template(client, operator_headers):
    """Edit the standard tier's template in a test, and put it back afterwards."""
    versions = (
        await client.get("/v1/admin/tiers/standard/config/versions", headers=operator_headers)
    ).json()["items"]
    start = versions[0]["version"] if versions else 0
    yield
    await client.post(
        "/v1/admin/tiers/standard/config/rollback",
        json={"version": start},
        headers=operator_headers,
    )


async def test_layers_and_sources(client, admin, operator_headers, standard_template):
    _, headers = admin
    start = (await client.get("/v1/config", headers=headers)).json()
    assert start["sources"]["language"] == "platform" and start["config"]["language"] == "english"

    tier = await client.patch(
        "/v1/admin/tiers/standard/config", json={"language": "spanish"}, headers=operator_headers
    )
    assert tier.status_code == 200
    inherited = (await client.get("/v1/config", headers=headers)).json()
    assert (inherited["config"]["language"], inherited["sources"]["language"]) == (
        "spanish",
        "tier",
    )

    own = await client.patch(
        "/v1/config",
        json={"language": "simple", "branding": {"primary_color": "#112233"}},
        headers=headers,
    )
    assert own.status_code == 200
    body = own.json()
    assert (body["config"]["language"], body["sources"]["language"]) == ("simple", "tenant")
    assert body["sources"]["branding.primary_color"] == "tenant"
    assert body["sources"]["branding.accent_color"] == "platform"

    back = (await client.patch("/v1/config", json={"language": None}, headers=headers)).json()
    assert (back["config"]["language"], back["sources"]["language"]) == ("spanish", "tier")
    assert back["config"]["branding"]["primary_color"] == "#112233"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"branding": {"primary_color": "red"}}, "body.branding.primary_color"),
        ({"branding": {"logo_url": "http://example.com/logo.png"}}, "body.branding.logo_url"),
        ({"unknown": 1}, "body.unknown"),
        (
            {"incidents": {"auto_resolve_min_confidence": 1.5}},
            "body.incidents.auto_resolve_min_confidence",
        ),
        ({"language": "klingon"}, "body.language"),
        ({"branding": "blue"}, "body.branding"),
        ({"embeddings": {"provider": "ollama"}}, "body.embeddings.provider"),
        ({"limits": {"requests_per_minute": 100_000}}, "body.limits.requests_per_minute"),
    ],
)
async def test_invalid_changes_name_the_path_and_save_nothing(client, admin, patch, field):
    _, headers = admin
    before = (await client.get("/v1/config/versions", headers=headers)).json()["items"]
    response = await client.patch("/v1/config", json=patch, headers=headers)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await client.get("/v1/config/versions", headers=headers)).json()["items"] == before


async def test_versions_diff_and_rollback(client, admin):
    _, headers = admin
    await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    await client.patch("/v1/config", json={"branding": {"display_name": "Casa"}}, headers=headers)
    page = (await client.get("/v1/config/versions", headers=headers)).json()
    assert [v["version"] for v in page["items"]] == [2, 1]
    assert page["items"][0]["diff"] == {"branding.display_name": {"from": None, "to": "Casa"}}
    assert page["items"][0]["author"].startswith("user:admin-")

    changes = (
        await client.get("/v1/config/diff", params={"from": 0, "to": 2}, headers=headers)
    ).json()["changes"]
    assert set(changes) == {"language", "branding.display_name"}

    rolled = await client.post("/v1/config/rollback", json={"version": 1}, headers=headers)
    assert rolled.status_code == 200
    assert rolled.json()["config"]["branding"]["display_name"] is None
    assert rolled.json()["config"]["language"] == "spanish" and rolled.json()["version"] == 3
    third = (await client.get("/v1/config/versions/3", headers=headers)).json()
    assert third["document"] == {"language": "spanish"}
    assert (await client.get("/v1/config/versions/9", headers=headers)).status_code == 404
    assert (
        await client.post("/v1/config/rollback", json={"version": 9}, headers=headers)
    ).status_code == 404


async def test_a_change_that_changes_nothing_writes_no_version(client, admin):
    _, headers = admin
    same = await client.patch("/v1/config", json={"branding": {"logo_url": None}}, headers=headers)
    assert same.status_code == 200 and same.json()["version"] == 0
    await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    again = await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    assert again.status_code == 200 and again.json()["version"] == 1
    back = await client.post("/v1/config/rollback", json={"version": 1}, headers=headers)
    assert back.status_code == 200 and back.json()["version"] == 1
    page = (await client.get("/v1/config/versions", headers=headers)).json()
    assert [v["version"] for v in page["items"]] == [1]


async def test_a_tenant_can_only_lower_its_own_limits(client, admin):
    _, headers = admin
    lowered = await client.patch(
        "/v1/config", json={"limits": {"requests_per_minute": 50}}, headers=headers
    )
    assert lowered.status_code == 200
    me = await client.get("/v1/me", headers=headers)
    assert me.headers["ratelimit-policy"] == '"default";q=50;w=60'


async def test_viewers_read_and_cannot_change(client, admin, make_user):
    tenant, _ = admin
    viewer = await make_user(tenant, "viewer")
    headers = bearer((await login(client, tenant, viewer))["access_token"])
    assert (await client.get("/v1/config", headers=headers)).status_code == 200
    assert (
        await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    ).status_code == 403


def test_the_cli_sets_shows_diffs_and_rolls_back(stack, make_tenant_sync):
    runner = CliRunner()
    slug = make_tenant_sync()

    def run(*args):
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert (
        run("config", "set", slug, "language=spanish", "branding.primary_color=#aabbcc")["version"]
        == 1
    )
    assert run("config", "set", slug, "incidents.escalation_after_minutes=30")["version"] == 2
    shown = run("config", "show", slug)
    assert shown["config"]["incidents"]["escalation_after_minutes"] == 30
    assert shown["sources"]["branding.primary_color"] == "tenant"
    assert [v["version"] for v in run("config", "history", slug)["items"]] == [2, 1]
    assert set(run("config", "diff", slug, "0", "2")) == {
        "language",
        "branding.primary_color",
        "incidents.escalation_after_minutes",
    }
    assert run("config", "rollback", slug, "1")["version"] == 3
    assert run("config", "show", slug)["config"]["incidents"]["escalation_after_minutes"] == 240
    unchanged = run("config", "set", slug, "language=spanish")
    assert unchanged["diff"] == {} and unchanged["version"] == 3  # no version for no change
    bad = runner.invoke(cli, ["config", "set", slug, "branding.primary_color=red"])
    assert bad.exit_code == 1 and "branding.primary_color" in bad.stderr


async def test_dedicated_workers_are_an_operators_decision(client, admin):
    """A tenant admin cannot route its work to a queue no worker serves: dedicated workers are
    set by operators (the CLI, a tier's template), and a tenant's change may not move them."""
    tenant, headers = admin
    refused = await client.patch(
        "/v1/config", json={"features": {"dedicated_workers": True}}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["body.features.dedicated_workers"]
    assert (await client.get("/v1/config", headers=headers)).json()["version"] == 0

    by_operator = await asyncio.to_thread(
        CliRunner().invoke, cli, ["config", "set", tenant.slug, "features.dedicated_workers=true"]
    )
    assert by_operator.exit_code == 0, by_operator.output
    # The API's cached configuration is dropped when the change's NOTIFY reaches its listener.
    for _ in range(500):
        shown = (await client.get("/v1/config", headers=headers)).json()
        if shown["version"] == 1:
            break
        await asyncio.sleep(0.01)
    assert shown["config"]["features"]["dedicated_workers"], shown

    other = await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    assert other.status_code == 200 and other.json()["config"]["features"]["dedicated_workers"]
    for change in (
        client.patch("/v1/config", json={"features": {"dedicated_workers": None}}, headers=headers),
        client.post("/v1/config/rollback", json={"version": 0}, headers=headers),
    ):
        undone = await change
        assert undone.status_code == 422, undone.text
    assert (await client.get("/v1/config", headers=headers)).json()["version"] == 2
