"""Audited writes of every kind in one tenant at once: no 5xx, and the audit chain still verifies.

Before, every audited write locked the tenant's row after its inserts already held a key-share lock
on it through their foreign keys, so two of them deadlocked upgrading (500s).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.concurrency.conftest import assert_no_5xx, at_once, statuses
from tests.conftest import PASSWORD, bearer, login

SUSPENDED = "https://tenantry.dev/problems/tenant-suspended"


def _writes(http, tenant, users, owner, admin, operator_headers):
    """Every kind of audited write, as (kind, coroutine) pairs."""
    calls = [
        (
            "login",
            http.post(
                "/v1/auth/login",
                json={"tenant": tenant.slug, "email": u.email, "password": PASSWORD},
            ),
        )
        for u in users
    ]
    calls += [
        (
            "key",
            http.post("/v1/api-keys", json={"name": f"k{i}", "scopes": ["read"]}, headers=admin),
        )
        for i in range(5)
    ]
    calls += [
        (
            "user",
            http.post(
                "/v1/users",
                json={"email": f"new{i}-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD},
                headers=owner,
            ),
        )
        for i in range(4)
    ]
    calls += [
        (
            "webhook",
            http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{i}"}, headers=admin),
        )
        for i in range(3)
    ]
    calls += [
        ("config", http.patch("/v1/config", json={"branding": {"accent_color": c}}, headers=admin))
        for c in ("#112233", "#445566", "#778899")
    ]
    calls += [
        (
            "lifecycle",
            http.post(f"/v1/admin/tenants/{tenant.slug}/{verb}", headers=operator_headers),
        )
        for verb in ("suspend", "resume")
    ]
    return calls


async def _fire_and_check(http, tenant, make_user, owner, admin, operator_headers):
    users = [await make_user(tenant, "member") for _ in range(8)]
    calls = _writes(http, tenant, users, owner, admin, operator_headers)
    responses = await at_once(*(call for _, call in calls))
    assert_no_5xx(responses)
    by_kind: dict[str, list] = {}
    for (kind, _), response in zip(calls, responses, strict=True):
        by_kind.setdefault(kind, []).append(response)
    expected = {
        "login": 200,
        "key": 201,
        "user": 201,
        "webhook": 201,
        "config": 200,
        "lifecycle": 200,
    }
    for kind, answers in by_kind.items():
        for answer in answers:
            # A write that lands while the operator has the tenant suspended is refused as such.
            suspended = answer.status_code == 403 and answer.json()["type"] == SUSPENDED
            assert answer.status_code == expected[kind] or suspended, (kind, answer.text)
    # The lifecycle calls may land in either order; leave the tenant active.
    await http.post(f"/v1/admin/tenants/{tenant.slug}/resume", headers=operator_headers)

    verify = await http.get(
        f"/v1/admin/tenants/{tenant.slug}/audit/verify", headers=operator_headers
    )
    assert verify.status_code == 200
    chain = verify.json()
    assert chain["ok"] is True, chain
    events = (
        await http.get(f"/v1/admin/tenants/{tenant.slug}/audit?limit=500", headers=operator_headers)
    ).json()["items"]
    actions = [e["action"] for e in events]
    assert chain["events"] == len(events)
    assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))
    logins = statuses(by_kind["login"])[200]
    assert actions.count("login.succeeded") == 2 + logins  # + the owner's and the admin's
    for kind, action in (("key", "api_key.created"), ("webhook", "webhook.created")):
        assert actions.count(action) == statuses(by_kind[kind])[expected[kind]], kind
    created_users = statuses(by_kind["user"])[201]
    assert actions.count("user.created") == len(users) + 2 + created_users  # + owner and admin


async def test_every_kind_of_audited_write_at_once_in_process(
    client, team, make_user, operator_headers
):
    tenant, owner, admin = team
    await _fire_and_check(client, tenant, make_user, owner, admin, operator_headers)


@pytest.mark.slow
async def test_every_kind_of_audited_write_at_once_through_a_real_server(
    api_process, client, team, make_user, operator_headers
):
    tenant, owner, admin = team
    async with httpx.AsyncClient(base_url=api_process, timeout=60) as http:
        await _fire_and_check(http, tenant, make_user, owner, admin, operator_headers)


async def test_owners_demoted_at_once_by_another(client, make_tenant, make_user):
    """Each demotion locks its target and the remaining owners; in any other order than one
    statement in id order, two of them hold a row the other waits for."""
    tenant = await make_tenant()
    *others, acting_owner = [await make_user(tenant, "owner") for _ in range(6)]
    acting = bearer((await login(client, tenant, acting_owner))["access_token"])
    responses = await at_once(
        *(client.patch(f"/v1/users/{u.id}", json={"role": "admin"}, headers=acting) for u in others)
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {200: len(others)}, [r.text for r in responses]
    listed = (await client.get("/v1/users", headers=acting)).json()["items"]
    assert [u["email"] for u in listed if u["role"] == "owner"] == [acting_owner.email]


async def test_owners_demoting_each_other_leave_exactly_one(client, make_tenant, make_user):
    tenant = await make_tenant()
    owners = [await make_user(tenant, "owner") for _ in range(4)]
    tokens = [bearer((await login(client, tenant, u))["access_token"]) for u in owners]
    # Each demotes the next, all at once: all but one succeed, the last owner stays.
    responses = await at_once(
        *(
            client.patch(
                f"/v1/users/{owners[(i + 1) % 4].id}", json={"role": "admin"}, headers=tokens[i]
            )
            for i in range(4)
        )
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {200: 3, 409: 1}, [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["type"].endswith("/last-owner")
    remaining = (await client.get("/v1/users", headers=tokens[0])).json()["items"]
    assert sum(u["role"] == "owner" and u["status"] == "active" for u in remaining) == 1
