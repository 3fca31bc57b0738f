"""Every input the database could not store is a 422 naming its field, before anything is written:
NUL characters, integers past their column, non-strict booleans and integers, unbounded JSON,
malformed URLs, times without a zone, in bodies, paths and queries alike."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bearer, login

NUL = "\u0000"


@pytest.fixture
async def admin(client, make_tenant, make_user):
    tenant = await make_tenant(tier="enterprise")
    user = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, user))["access_token"])


def fields_of(response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/validation-error") and problem["status"] == 422
    return [e["field"] for e in problem["errors"]]


TENANT_CASES = [
    ("GET", "/v1/incidents", {"area": NUL}, None, "query.area"),
    ("GET", "/v1/documents", {"tag": f"a{NUL}"}, None, "query.tag"),
    ("GET", "/v1/config/versions/2147483648", {}, None, "path.version"),
    ("GET", "/v1/config/diff", {"from": 0, "to": 2147483648}, None, "query.to"),
    ("GET", "/v1/incidents/INC-1234567890", {}, None, "path.number"),
    ("POST", "/v1/config/rollback", {}, {"version": 2147483648}, "body.version"),
    ("POST", "/v1/config/rollback", {}, {"version": False}, "body.version"),
    ("POST", "/v1/config/rollback", {}, {"version": "1"}, "body.version"),
    ("POST", "/v1/search", {}, {"query": f"caldera{NUL}"}, "body.query"),
    ("POST", "/v1/search", {}, {"query": "caldera", "limit": True}, "body.limit"),
    ("POST", "/v1/incidents", {}, {"title": f"a{NUL}b", "description": "x"}, "body.title"),
    ("POST", "/v1/incidents", {}, {"title": "a", "description": "x", "area": NUL}, "body.area"),
    ("PATCH", "/v1/config", {}, {"branding": {"display_name": NUL}}, "body.branding.display_name"),
    ("PATCH", "/v1/config", {}, {"features": {"webhooks": "yes"}}, "body.features.webhooks"),
    ("PATCH", "/v1/config", {}, {"webhooks": {"max_attempts": True}}, "body.webhooks.max_attempts"),
    ("POST", "/v1/api-keys", {}, {"name": NUL, "scopes": ["read"]}, "body.name"),
    (
        "POST",
        "/v1/api-keys",
        {},
        {"name": "k", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00"},
        "body.expires_at",
    ),
    ("POST", "/v1/webhooks", {}, {"url": "http://127.0.0.1:99999/"}, "body.url"),
    ("POST", "/v1/webhooks", {}, {"url": "ftp://127.0.0.1/"}, "body.url"),
    ("POST", "/v1/webhooks", {}, {"url": "http://[::1/"}, "body.url"),
    ("POST", "/v1/webhooks", {}, {"url": f"http://127.0.0.1/{NUL}"}, "body.url"),
    ("POST", "/v1/documents", {}, {"title": "t", "text": f"a{NUL}b"}, "body.text"),
    ("POST", "/v1/documents", {}, {"title": "t", "text": " \n\t "}, "body.text"),
    (
        "POST",
        "/v1/documents",
        {},
        {"title": "t", "text": "x", "metadata": {"k": NUL}},
        "body.metadata.k",
    ),
    (
        "POST",
        "/v1/documents",
        {},
        {
            "title": "t",
            "text": "x",
            "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}},
        },
        "body.metadata.a.b.c.d.e.f.g.h",
    ),
    ("POST", "/v1/documents", {}, {"title": "t", "text": "x", "tags": [NUL]}, "body.tags.0"),
    ("PUT", "/v1/sso/ldap", {}, "ldap", "body.server_url"),
]


@pytest.mark.parametrize(("method", "url", "query", "body", "field"), TENANT_CASES)
async def test_tenant_inputs_that_cannot_be_stored_are_422(
    client, admin, admin_sql, method, url, query, body, field
):
    tenant, headers = admin
    if body == "ldap":
        body = {
            "server_url": "ldap://127.0.0.1:99999",
            "base_dn": "dc=x",
            "bind_template": "uid={username}",
            "group_role_map": {},
        }
    before = _rows_of(admin_sql, tenant.id)
    response = await client.request(method, url, params=query, json=body, headers=headers)
    assert field in fields_of(response), response.text
    assert _rows_of(admin_sql, tenant.id) == before


def _rows_of(admin_sql, tenant_id) -> dict[str, int]:
    """How many rows the tenant has in the tables these requests could write."""
    counts = {}
    for table in ("documents", "incidents", "api_keys", "webhook_endpoints", "config_versions"):
        (counts[table],) = admin_sql.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [tenant_id]
        ).fetchone()
    return counts


async def test_a_false_version_does_not_wipe_the_overrides(client, admin):
    _, headers = admin
    changed = await client.patch("/v1/config", json={"language": "spanish"}, headers=headers)
    assert changed.status_code == 200
    refused = await client.post("/v1/config/rollback", json={"version": False}, headers=headers)
    assert fields_of(refused) == ["body.version"]
    config = (await client.get("/v1/config", headers=headers)).json()
    assert config["config"]["language"] == "spanish" and config["version"] == 1


async def test_unauthenticated_login_with_nul_is_422(client):
    response = await client.post(
        "/v1/auth/login",
        json={"tenant": f"ab{NUL}c", "email": "a@example.com", "password": "x"},
    )
    assert fields_of(response) == ["body.tenant"]
    ldap = await client.post(
        "/v1/auth/ldap", json={"tenant": "abc", "username": f"u{NUL}", "password": "x"}
    )
    assert fields_of(ldap) == ["body.username"]


async def test_operator_inputs_that_cannot_be_stored_are_422(client, operator_headers, make_tenant):
    tenant = await make_tenant()
    cases = [
        ("GET", "/v1/admin/tenants/ab%00c", None, "path.slug"),
        (
            "PATCH",
            f"/v1/admin/tenants/{tenant.slug}/limits",
            {"documents": 2**63},
            "body.documents",
        ),
        ("PATCH", f"/v1/admin/tenants/{tenant.slug}/limits", {"users": True}, "body.users"),
        ("PATCH", f"/v1/admin/tenants/{tenant.slug}", {"name": f"a{NUL}"}, "body.name"),
        ("POST", "/v1/admin/tenants", {"slug": "ok-slug", "name": NUL}, "body.name"),
        ("POST", "/v1/admin/tiers/free/config/rollback", {"version": -1}, "body.version"),
    ]
    for method, url, body, field in cases:
        response = await client.request(method, url, json=body, headers=operator_headers)
        assert field in fields_of(response), (url, response.text)
    limits = await client.get(f"/v1/admin/tenants/{tenant.slug}/limits", headers=operator_headers)
    assert limits.json()["overrides"] == {}


async def test_the_external_search_refuses_nul(client, admin):
    _, headers = admin
    key = await client.post(
        "/v1/api-keys", json={"name": "erp", "scopes": ["external"]}, headers=headers
    )
    response = await client.get(
        "/v1/external/knowledge/search", params={"q": NUL}, headers=bearer(key.json()["key"])
    )
    assert fields_of(response) == ["query.q"]


async def test_the_tag_filter_works(client, admin):
    _, headers = admin
    tagged = await client.post(
        "/v1/documents",
        json={"title": "t", "text": "con etiqueta", "tags": ["calderas"]},
        headers=headers,
    )
    other = await client.post(
        "/v1/documents", json={"title": "o", "text": "sin etiqueta"}, headers=headers
    )
    assert tagged.status_code == other.status_code == 202
    listed = await client.get("/v1/documents", params={"tag": "calderas"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["items"]] == [tagged.json()["id"]]
    none = await client.get("/v1/documents", params={"tag": "nada"}, headers=headers)
    assert none.json()["items"] == []


async def test_non_finite_json_numbers_are_refused(client, admin):
    _, headers = admin
    body = '{"title": "t", "text": "x", "metadata": {"score": NaN}}'
    response = await client.post(
        "/v1/documents", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert fields_of(response) == ["body.metadata.score"]


async def test_usage_periods_at_the_edges_of_the_calendar(client, admin):
    _, headers = admin
    early = await client.get("/v1/usage", params={"to": "0001-01-05"}, headers=headers)
    assert early.status_code == 200, early.text
    too_long = await client.get(
        "/v1/usage", params={"from": "2020-01-01", "to": "2026-01-01"}, headers=headers
    )
    assert fields_of(too_long) == ["query.from"]


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "empty.txt", "empty"),
        (b" \n\t\r\n  ", "blank.txt", "no text"),
        ("\u00a0\u2003\n".encode(), "blank.md", "no text"),
        (b"\x00 \x00\n\x00", "nul.txt", "no text"),
    ],
)
async def test_uploads_that_can_never_be_documents_are_refused_at_once(
    client, admin, admin_sql, content, filename, message
):
    tenant, headers = admin
    response = await client.post(
        "/v1/documents/upload", files={"file": (filename, content, "text/plain")}, headers=headers
    )
    assert fields_of(response) == ["body.file"]
    assert message in response.json()["errors"][0]["message"]
    assert _rows_of(admin_sql, tenant.id)["documents"] == 0


async def test_upload_form_fields_are_held_to_the_json_rules(client, admin, admin_sql):
    tenant, headers = admin
    file = {"file": ("a.txt", b"hola", "text/plain")}
    for data, field in [
        ({"tags": "a," + "x" * 65}, "body.tags"),
        ({"metadata": json.dumps({"k": NUL})}, "body.metadata"),
        ({"title": f"t{NUL}"}, "body.title"),
    ]:
        response = await client.post("/v1/documents/upload", files=file, data=data, headers=headers)
        assert field in fields_of(response), response.text
    # Sent by hand: a client library would escape the NUL in the file name.
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhola\r\n--b--\r\n"
    )
    named = await client.post(
        "/v1/documents/upload",
        content=multipart,
        headers={**headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert fields_of(named) == ["body.file"]
    assert _rows_of(admin_sql, tenant.id)["documents"] == 0
