"""Keyset pagination on every list: rows written between two pages are neither repeated nor
skipped, a cursor is checked on the way back in, and the page size is bounded."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.conftest import all_items, bearer, login, unique_slug


@pytest.fixture
async def admin(client, make_tenant, make_user):
    tenant = await make_tenant(tier="enterprise")
    user = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, user))["access_token"])


async def walk_with_writes_between(client, url, headers, write, key, *, limit=2, **params):
    """Every page of `url`, calling `write` after each page; the keys seen, in order."""
    seen, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor", "limit"} and page["limit"] == limit
        assert len(page["items"]) <= limit
        seen += [key(item) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        await write()


async def new_document(client, headers):
    text = f"document {uuid.uuid4().hex}"
    response = await client.post(
        "/v1/documents", json={"title": "Paged", "text": text}, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def test_documents_written_between_pages_neither_repeat_nor_hide_others(client, admin):
    _, headers = admin
    before = [await new_document(client, headers) for _ in range(7)]
    written = []

    async def write():
        written.append(await new_document(client, headers))

    seen = await walk_with_writes_between(
        client, "/v1/documents", headers, write, lambda d: d["id"]
    )
    assert len(written) == 3
    # Newest first: every document that was there is seen exactly once, newer ones are not.
    assert seen == list(reversed(before))
    everything = await all_items(client, "/v1/documents", headers)
    assert [d["id"] for d in everything] == list(reversed(before + written))


async def test_incidents_written_between_pages(client, admin):
    _, headers = admin

    async def report():
        response = await client.post(
            "/v1/incidents", json={"title": "Paged", "description": "x"}, headers=headers
        )
        assert response.status_code == 201, response.text
        return response.json()["number"]

    before = [await report() for _ in range(5)]
    written = []

    async def write():
        written.append(await report())

    seen = await walk_with_writes_between(
        client, "/v1/incidents", headers, write, lambda i: i["number"]
    )
    assert seen == list(reversed(before)) and len(written) == 2
    # A filter pages the same way (severity: the workflows may already have moved the status).
    filtered = await all_items(client, "/v1/incidents", headers, severity="medium", limit=3)
    assert [i["number"] for i in filtered] == list(reversed(before + written))


async def test_audit_events_written_between_pages(client, admin, operator_headers):
    tenant, headers = admin
    for n in range(4):
        created = await client.post(
            "/v1/api-keys", json={"name": f"k{n}", "scopes": ["read"]}, headers=headers
        )
        assert created.status_code == 201
    url = f"/v1/admin/tenants/{tenant.slug}/audit"
    before = [e["seq"] for e in await all_items(client, url, operator_headers)]

    async def write():
        key = await client.post(
            "/v1/api-keys", json={"name": "between", "scopes": ["read"]}, headers=headers
        )
        assert key.status_code == 201

    seen = await walk_with_writes_between(client, url, operator_headers, write, lambda e: e["seq"])
    assert seen == before == sorted(before, reverse=True)
    after = [e["seq"] for e in await all_items(client, url, operator_headers, limit=4)]
    assert after == list(range(len(after), 0, -1)) and len(after) > len(before)


async def test_tenants_created_between_pages(client, operator_headers, make_tenant):
    for _ in range(3):
        await make_tenant()
    before = [t["slug"] for t in await all_items(client, "/v1/admin/tenants", operator_headers)]
    created = []

    async def write():
        # One sorting before every slug seen so far, one after (later ones after earlier ones):
        # only the one ahead of the cursor can show up.
        for prefix in ("a", f"z{len(created):03d}"):
            slug = unique_slug(prefix)
            response = await client.post(
                "/v1/admin/tenants", json={"slug": slug, "name": "Paged"}, headers=operator_headers
            )
            assert response.status_code == 201, response.text
            created.append(slug)

    limit = max(2, len(before) // 3)  # a few pages, however many tenants the session made
    seen = await walk_with_writes_between(
        client, "/v1/admin/tenants", operator_headers, write, lambda t: t["slug"], limit=limit
    )
    assert len(created) >= 4 and len(seen) == len(set(seen)) and seen == sorted(seen)
    assert set(before) <= set(seen)
    assert {s for s in seen if s not in before} == {s for s in created if s.startswith("z")}


def forged(list_name: str, key: list) -> str:
    raw = json.dumps([list_name, key]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_cursors_are_checked_and_limits_bounded(client, admin):
    _, headers = admin
    for _ in range(3):
        await new_document(client, headers)
    first = (await client.get("/v1/documents", params={"limit": 1}, headers=headers)).json()
    good = first["next_cursor"]
    assert good and len(first["items"]) == 1
    [created_at, document_id] = json.loads(base64.urlsafe_b64decode(good + "=="))[1]
    bad_cursors = {
        "not base64url": "!!!",
        "not JSON": base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
        "another list's": forged("incidents", [3, str(uuid.uuid4())]),
        "a wrong shape": forged("documents", [created_at]),
        "a naive time": forged("documents", [created_at[:19], document_id]),
        "not a time": forged("documents", ["yesterday", document_id]),
        "not an id": forged("documents", [created_at, "x\u0000"]),
        "cut short": good[:-6],
    }
    for reason, cursor in bad_cursors.items():
        response = await client.get("/v1/documents", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 422, (reason, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"], reason
    past_int8 = forged("incidents", [2**63, str(uuid.uuid4())])
    response = await client.get("/v1/incidents", params={"cursor": past_int8}, headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "query.cursor"

    for limit in (0, -1, 501, "many", 2**63):
        response = await client.get("/v1/documents", params={"limit": limit}, headers=headers)
        assert response.status_code == 422, limit
        assert response.json()["errors"][0]["field"] == "query.limit"
    assert (await client.get("/v1/documents", params={"limit": 500}, headers=headers)).is_success
    offset = await client.get("/v1/documents", params={"offset": 2}, headers=headers)
    assert offset.status_code == 422 and offset.json()["errors"][0]["field"] == "query.offset"


async def test_every_list_answers_one_page_shape(client, admin, operator_headers):
    tenant, headers = admin
    endpoint = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/paged"}, headers=headers
    )
    assert endpoint.status_code == 201, endpoint.text
    me = (await client.get("/v1/me", headers=headers)).json()["id"]
    for url, caller in [
        ("/v1/users", headers),
        (f"/v1/users/{me}/identities", headers),
        ("/v1/api-keys", headers),
        ("/v1/webhooks", headers),
        (f"/v1/webhooks/{endpoint.json()['id']}/deliveries", headers),
        ("/v1/config/versions", headers),
        ("/v1/documents", headers),
        ("/v1/incidents", headers),
        ("/v1/admin/tenants", operator_headers),
        ("/v1/admin/operators", operator_headers),
        ("/v1/admin/tiers", operator_headers),
        ("/v1/admin/tiers/free/config/versions", operator_headers),
        (f"/v1/admin/tenants/{tenant.slug}/audit", operator_headers),
        ("/v1/admin/usage", operator_headers),
    ]:
        response = await client.get(url, params={"limit": 1}, headers=caller)
        assert response.status_code == 200, (url, response.text)
        assert set(response.json()) == {"items", "next_cursor", "limit"}, url
    tiers = await all_items(client, "/v1/admin/tiers", operator_headers, limit=2)
    assert [t["tier"] for t in tiers] == ["free", "standard", "enterprise"]


async def test_another_tenants_cursor_shows_only_the_callers_rows(
    client, admin, make_tenant, make_user
):
    _, a_headers = admin
    other = await make_tenant()
    b_headers = bearer(
        (await login(client, other, await make_user(other, "admin")))["access_token"]
    )
    b_ids = {await new_document(client, b_headers) for _ in range(3)}
    a_ids = {await new_document(client, a_headers) for _ in range(3)}
    a_cursor = (await client.get("/v1/documents", params={"limit": 1}, headers=a_headers)).json()[
        "next_cursor"
    ]
    # A's cursor points past B's documents (they are older): B sees all of its own, none of A's.
    seen = {d["id"] for d in await all_items(client, "/v1/documents", b_headers, cursor=a_cursor)}
    assert seen == b_ids and not seen & a_ids
