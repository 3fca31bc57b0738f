"""The tenant lifecycle through `/v1/admin/tenants`, including every kind of bad input."""

from __future__ import annotations

import pytest

from tests.conftest import unique_slug

BASE = "/v1/admin/tenants"


def counts(admin_sql) -> tuple[int, int]:
    tenants = admin_sql.execute("SELECT count(*) FROM tenants").fetchone()[0]
    events = admin_sql.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    return tenants, events


async def test_create_show_and_namespace(client, operator_headers, settings):
    slug = unique_slug()
    created = await client.post(
        BASE,
        json={"slug": slug, "name": "Casa Hogar", "tier": "enterprise"},
        headers=operator_headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"].endswith(f"{BASE}/{slug}")
    assert (body["slug"], body["tier"], body["status"]) == (slug, "enterprise", "active")
    assert body["namespace"] == {
        "cell": "main",
        "task_queue": settings.pool_task_queue,
        "cache_prefix": f"tenantry:{slug}:",
        "log_label": f"tenant={slug}",
    }
    shown = await client.get(f"{BASE}/{slug}", headers=operator_headers)
    assert shown.json()["id"] == body["id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "Bad-Slug", "name": "x"}, "body.slug"),
        ({"slug": "ab", "name": "x"}, "body.slug"),
        ({"slug": "1abc", "name": "x"}, "body.slug"),
        ({"slug": "a" * 41, "name": "x"}, "body.slug"),
        ({"slug": "good-slug", "name": "x", "tier": "platinum"}, "body.tier"),
        ({"slug": "good-slug", "name": "x" * 201}, "body.name"),
        ({"slug": "good-slug", "name": "   "}, "body.name"),
        ({"slug": "good-slug"}, "body.name"),
        ({"slug": "good-slug", "name": "x", "owner": "me"}, "body.owner"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    client, operator_headers, admin_sql, payload, field
):
    before = counts(admin_sql)
    response = await client.post(BASE, json=payload, headers=operator_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://tenantry.dev/problems/validation-error"
    assert field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    assert counts(admin_sql) == before


async def test_malformed_json_is_400(client, operator_headers, admin_sql):
    before = counts(admin_sql)
    response = await client.post(
        BASE,
        content=b'{"slug": "abc", ',
        headers={**operator_headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-request")
    assert counts(admin_sql) == before


async def test_oversized_body_is_413(client, operator_headers, admin_sql, settings):
    before = counts(admin_sql)
    big = {"slug": "big-body", "name": "x" * (settings.max_body_bytes + 10)}
    response = await client.post(BASE, json=big, headers=operator_headers)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
    assert counts(admin_sql) == before


async def test_duplicate_slug_is_409_and_writes_nothing(client, operator_headers, admin_sql):
    slug = unique_slug()
    assert (
        await client.post(BASE, json={"slug": slug, "name": "A"}, headers=operator_headers)
    ).status_code == 201
    before = counts(admin_sql)
    again = await client.post(BASE, json={"slug": slug, "name": "B"}, headers=operator_headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/tenant-exists")
    assert slug in again.json()["detail"]
    assert counts(admin_sql) == before


async def test_requires_an_operator(client):
    assert (await client.get(BASE)).status_code == 401
    bad = await client.get(BASE, headers={"Authorization": "Bearer tnop_not-a-real-token"})
    assert bad.status_code == 401
    assert bad.json()["type"].endswith("/unauthorized")
    # What the bootstrap token may do: tests/identity/test_bootstrap_token.py.


async def test_unknown_tenant_is_404_problem(client, operator_headers):
    response = await client.get(f"{BASE}/no-such-tenant", headers=operator_headers)
    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")


async def test_list_filters_and_paginates(client, operator_headers, make_tenant):
    tier_slugs = {}
    for tier in ("free", "enterprise", "enterprise"):
        tenant = await make_tenant(tier=tier)
        tier_slugs.setdefault(tier, []).append(tenant.slug)
    suspended = await make_tenant(tier="free")
    await client.post(f"{BASE}/{suspended.slug}/suspend", headers=operator_headers)

    page = (
        await client.get(
            BASE, params={"tier": "enterprise", "limit": 500}, headers=operator_headers
        )
    ).json()
    assert {t["tier"] for t in page["items"]} == {"enterprise"}
    assert set(tier_slugs["enterprise"]) <= {t["slug"] for t in page["items"]}

    only_suspended = (
        await client.get(
            BASE, params={"status": "suspended", "limit": 500}, headers=operator_headers
        )
    ).json()
    assert suspended.slug in {t["slug"] for t in only_suspended["items"]}
    assert {t["status"] for t in only_suspended["items"]} == {"suspended"}

    first = (await client.get(BASE, params={"limit": 2}, headers=operator_headers)).json()
    second = (
        await client.get(
            BASE, params={"limit": 2, "cursor": first["next_cursor"]}, headers=operator_headers
        )
    ).json()
    assert len(first["items"]) == 2 and first["next_cursor"] and "total" not in first
    assert not {t["slug"] for t in first["items"]} & {t["slug"] for t in second["items"]}
    assert first["items"][-1]["slug"] < second["items"][0]["slug"]

    bad = await client.get(BASE, params={"tier": "gold"}, headers=operator_headers)
    assert bad.status_code == 422 and "query.tier" in bad.json()["detail"]


async def test_update_suspend_resume_delete(client, operator_headers, make_tenant, admin_sql):
    tenant = await make_tenant(tier="free")
    url = f"{BASE}/{tenant.slug}"

    updated = await client.patch(
        url, json={"name": "Renamed", "tier": "standard"}, headers=operator_headers
    )
    assert (updated.json()["name"], updated.json()["tier"]) == ("Renamed", "standard")
    empty = await client.patch(url, json={}, headers=operator_headers)
    assert empty.status_code == 422

    suspended = await client.post(f"{url}/suspend", headers=operator_headers)
    assert suspended.json()["status"] == "suspended" and suspended.json()["suspended_at"]
    resumed = await client.post(f"{url}/resume", headers=operator_headers)
    assert resumed.json()["status"] == "active" and resumed.json()["suspended_at"] is None

    deleted = await client.delete(url, headers=operator_headers)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    again = await client.delete(url, headers=operator_headers)
    assert again.status_code == 200 and again.json()["deleted_at"] == deleted.json()["deleted_at"]

    gone = await client.patch(url, json={"name": "Too late"}, headers=operator_headers)
    assert gone.status_code == 409 and gone.json()["type"].endswith("/tenant-deleted")
    listed = (await client.get(BASE, params={"limit": 500}, headers=operator_headers)).json()
    assert tenant.slug not in {t["slug"] for t in listed["items"]}


async def test_lifecycle_changes_are_audited_with_request_id(client, operator_headers):
    slug = unique_slug()
    await client.post(BASE, json={"slug": slug, "name": "Audited"}, headers=operator_headers)
    await client.patch(
        f"{BASE}/{slug}",
        json={"tier": "enterprise"},
        headers={**operator_headers, "X-Request-ID": "req-update-0001"},
    )
    await client.post(f"{BASE}/{slug}/suspend", headers=operator_headers)
    events = (await client.get(f"{BASE}/{slug}/audit", headers=operator_headers)).json()["items"]
    assert [e["action"] for e in events] == ["tenant.suspended", "tenant.updated", "tenant.created"]
    update = events[1]
    assert update["request_id"] == "req-update-0001"
    assert update["actor"].startswith("operator:ops-")
    assert (update["before"]["tier"], update["after"]["tier"]) == ("free", "enterprise")
    verified = (await client.get(f"{BASE}/{slug}/audit/verify", headers=operator_headers)).json()
    assert {k: verified[k] for k in ("ok", "events", "first_bad_seq", "reason", "deletion")} == {
        "ok": True,
        "events": 3,
        "first_bad_seq": None,
        "reason": None,
        "deletion": None,
    }
