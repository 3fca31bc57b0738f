"""`Idempotency-Key` on POST: the same key and body replay the first answer; another body is a
422; a request while the first is in flight is a 409; keys expire after 24 h; keys belong to the
tenant, or to the operator on admin routes; stored answers are sealed (they may hold secrets); an
error answer is not kept."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from tenantry.db.urls import libpq_dsn
from tests.conftest import PASSWORD, bearer, login, unique_slug


async def _admin(client, make_tenant, make_user, tier: str = "standard"):
    tenant = await make_tenant(tier=tier)
    token = (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    return tenant, bearer(token)


def _keyed(headers: dict, key: str) -> dict:
    return {**headers, "Idempotency-Key": key}


async def test_the_same_key_and_body_replay_the_first_answer(
    client, make_tenant, make_user, admin_sql
):
    tenant, headers = await _admin(client, make_tenant, make_user)
    key = f"create-key-{uuid.uuid4()}"
    body = {"name": "ci", "scopes": ["read"]}
    first = await client.post("/v1/api-keys", json=body, headers=_keyed(headers, key))
    again = await client.post("/v1/api-keys", json=body, headers=_keyed(headers, key))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    created = admin_sql.execute(
        "SELECT count(*) FROM api_keys WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert created == 1
    # The answer holds the key's secret: it is kept sealed, never in the clear.
    stored = admin_sql.execute(
        "SELECT response FROM idempotency_keys WHERE tenant_id = %s AND key = %s", [tenant.id, key]
    ).fetchone()[0]
    assert first.json()["key"].encode() not in bytes(stored)

    other = await client.post(
        "/v1/api-keys", json={**body, "name": "another"}, headers=_keyed(headers, key)
    )
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert (
        admin_sql.execute(
            "SELECT count(*) FROM api_keys WHERE tenant_id = %s", [tenant.id]
        ).fetchone()[0]
        == 1
    )
    # The same key on another route is another request too.
    elsewhere = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=_keyed(headers, key)
    )
    assert elsewhere.status_code == 422


async def test_a_request_while_the_first_is_in_flight_gets_409(
    client, make_tenant, make_user, stack, admin_sql
):
    tenant, headers = await _admin(client, make_tenant, make_user)
    warm = await client.post(
        "/v1/incidents", json={"title": "a", "description": "b"}, headers=headers
    )
    assert warm.status_code == 201  # the tenant's incident counter row now exists
    key = f"incident-{uuid.uuid4()}"
    body = {"title": "Caldera", "description": "No enciende"}
    # Hold the tenant's incident counter, so the first request blocks inside its handler.
    with psycopg.connect(libpq_dsn(stack.admin_url)) as holder:
        holder.execute(
            "SELECT 1 FROM incident_counters WHERE tenant_id = %s FOR UPDATE", [tenant.id]
        )
        calls = [
            asyncio.create_task(
                client.post("/v1/incidents", json=body, headers=_keyed(headers, key))
            )
            for _ in range(6)
        ]
        done, pending = set(), set(calls)
        while len(done) < 5:  # every call but the blocked one answers (a guard, not a wait)
            finished, pending = await asyncio.wait(
                pending, timeout=60, return_when=asyncio.FIRST_COMPLETED
            )
            assert finished, "more than one request is running the handler"
            done |= finished
        refused = [t.result() for t in done]
        assert [r.status_code for r in refused] == [409] * 5
        assert all(r.json()["type"].endswith("/idempotency-key-in-use") for r in refused)
        assert all(r.headers["retry-after"] == "1" for r in refused)
        holder.rollback()
    [first] = [await t for t in pending]
    assert first.status_code == 201
    replay = await client.post("/v1/incidents", json=body, headers=_keyed(headers, key))
    assert replay.status_code == 201 and replay.json()["number"] == first.json()["number"]
    count = admin_sql.execute(
        "SELECT count(*) FROM incidents WHERE tenant_id = %s AND title = 'Caldera'", [tenant.id]
    ).fetchone()[0]
    assert count == 1


async def test_keys_expire_after_24_hours(client, make_tenant, make_user, admin_sql):
    tenant, headers = await _admin(client, make_tenant, make_user)
    key = f"expiring-{uuid.uuid4()}"
    first = await client.post(
        "/v1/api-keys", json={"name": "one", "scopes": ["read"]}, headers=_keyed(headers, key)
    )
    assert first.status_code == 201
    expires = admin_sql.execute(
        "SELECT expires_at - created_at FROM idempotency_keys WHERE tenant_id = %s AND key = %s",
        [tenant.id, key],
    ).fetchone()[0]
    assert expires.total_seconds() == 24 * 3600
    admin_sql.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second', "
        "created_at = now() - interval '24 hours 1 second' WHERE tenant_id = %s AND key = %s",
        [tenant.id, key],
    )
    reused = await client.post(
        "/v1/api-keys", json={"name": "two", "scopes": ["read"]}, headers=_keyed(headers, key)
    )
    assert reused.status_code == 201 and reused.json()["name"] == "two"
    assert "idempotent-replayed" not in reused.headers


async def test_keys_belong_to_their_tenant_or_operator(
    client, make_tenant, make_user, operator_headers, admin_sql
):
    _, a_headers = await _admin(client, make_tenant, make_user)
    _, b_headers = await _admin(client, make_tenant, make_user)
    key = f"shared-{uuid.uuid4()}"
    body = {"name": "same", "scopes": ["read"]}
    for headers in (a_headers, b_headers):
        made = await client.post("/v1/api-keys", json=body, headers=_keyed(headers, key))
        assert made.status_code == 201 and "idempotent-replayed" not in made.headers
    operators = []
    for _ in range(2):
        email = f"ops-{uuid.uuid4().hex[:8]}@tenantry.dev"
        created = await client.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Ops", "password": PASSWORD},
            headers=operator_headers,
        )
        assert created.status_code == 201
        token = await client.post(
            "/v1/admin/auth/login", json={"email": email, "password": PASSWORD}
        )
        operators.append(bearer(token.json()["access_token"]))
    slugs = []
    for headers in operators:
        slug = unique_slug("idem")
        made = await client.post(
            "/v1/admin/tenants", json={"slug": slug, "name": "I"}, headers=_keyed(headers, key)
        )
        assert made.status_code == 201 and "idempotent-replayed" not in made.headers
        slugs.append(slug)
    replayed = await client.post(
        "/v1/admin/tenants",
        json={"slug": slugs[0], "name": "I"},
        headers=_keyed(operators[0], key),
    )
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["slug"] == slugs[0]
    assert (
        admin_sql.execute(
            "SELECT count(*) FROM operator_idempotency_keys WHERE key = %s", [key]
        ).fetchone()[0]
        == 2
    )


async def test_bad_keys_and_uploads(client, make_tenant, make_user, worker):
    _, headers = await _admin(client, make_tenant, make_user)
    for bad in (b"", b"with space", b"x" * 256, "caf\u00e9".encode()):
        refused = await client.post(
            "/v1/api-keys",
            json={"name": "x", "scopes": ["read"]},
            headers={**headers, "Idempotency-Key": bad},
        )
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == "header.Idempotency-Key"
    # An error answer changed nothing and is not kept: the key is free for the corrected request.
    key = f"fixed-{uuid.uuid4()}"
    wrong = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["nope"]}, headers=_keyed(headers, key)
    )
    assert wrong.status_code == 422
    fixed = await client.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["read"]}, headers=_keyed(headers, key)
    )
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers

    # A body past the limit without a length (chunked) is refused as without a key.
    async def chunks():
        for _ in range(3):
            yield b" " * 600_000

    big = await client.post(
        "/v1/api-keys",
        content=chunks(),
        headers={**_keyed(headers, f"big-{uuid.uuid4()}"), "content-type": "application/json"},
    )
    assert big.status_code == 413, big.text
    # A multipart upload sent again (with a new random boundary) is the same request.
    key = f"upload-{uuid.uuid4()}"
    files = {"file": ("nota.txt", f"Purgar el radiador {uuid.uuid4()}".encode(), "text/plain")}
    first = await client.post("/v1/documents/upload", files=files, headers=_keyed(headers, key))
    again = await client.post("/v1/documents/upload", files=files, headers=_keyed(headers, key))
    assert first.status_code == again.status_code == 202
    assert (
        again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    )
    assert again.headers["location"] == first.headers["location"]


async def test_the_header_is_in_the_openapi_schema(app):
    schema = app.openapi()
    documents = schema["paths"]["/v1/documents"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in documents["parameters"])
    assert {"409", "422"} <= set(documents["responses"])
    login_ = schema["paths"]["/v1/auth/login"]["post"]
    assert not any(p.get("name") == "Idempotency-Key" for p in login_.get("parameters", []))
