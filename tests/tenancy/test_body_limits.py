"""Body limits per route: uploads up to the document limit, JSON bodies up to the body limit, and
the same 413 problem whether the size was declared (Content-Length) or only counted (chunked)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bearer, login


@pytest.fixture
async def admin(client, make_tenant, make_user):
    tenant = await make_tenant(tier="enterprise")
    user = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, user))["access_token"])


def chunked(data: bytes, size: int = 256 * 1024):
    async def stream():
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return stream()


def multipart(content: bytes, filename: str = "big.txt") -> tuple[bytes, str]:
    head = (
        f'--b\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    return head + content + b"\r\n--b--\r\n", "multipart/form-data; boundary=b"


def assert_too_large(response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/payload-too-large")
    assert "x-request-id" in response.headers


async def count_documents(admin_sql, tenant) -> int:
    return admin_sql.execute(
        "SELECT count(*) FROM documents WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]


async def test_uploads_larger_than_a_json_body_are_accepted(client, admin, settings, admin_sql):
    tenant, headers = admin
    content = b"Texto de la guia de calderas. " * (3 * settings.max_body_bytes // 30)
    assert len(content) > 2 * settings.max_body_bytes
    declared = await client.post(
        "/v1/documents/upload", files={"file": ("big.txt", content, "text/plain")}, headers=headers
    )
    assert declared.status_code == 202, declared.text
    body, kind = multipart(content.replace(b"calderas", b"radiador"))
    streamed = await client.post(
        "/v1/documents/upload",
        content=chunked(body),
        headers={**headers, "content-type": kind},
    )
    assert streamed.status_code == 202, streamed.text
    assert await count_documents(admin_sql, tenant) == 2
    # Their ingestion would embed megabytes for nothing: once deleted, it ends at once.
    for created in (declared, streamed):
        gone = await client.delete(f"/v1/documents/{created.json()['id']}", headers=headers)
        assert gone.status_code == 204


async def test_json_bodies_past_the_body_limit_are_413_declared_or_chunked(
    client, admin, settings, admin_sql
):
    tenant, headers = admin
    text = "x" * (settings.max_body_bytes + 10)
    body = json.dumps({"title": "grande", "text": text}).encode()
    declared = await client.post(
        "/v1/documents",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )
    assert_too_large(declared)
    streamed = await client.post(
        "/v1/documents",
        content=chunked(body),
        headers={**headers, "content-type": "application/json"},
    )
    assert "content-length" not in streamed.request.headers
    assert_too_large(streamed)
    assert await count_documents(admin_sql, tenant) == 0


async def test_uploads_past_the_document_limit_are_413_declared_or_chunked(
    client, admin, settings, admin_sql
):
    tenant, headers = admin
    over_document = b"y" * (settings.max_document_bytes + 1)
    refused = await client.post(
        "/v1/documents/upload",
        files={"file": ("big.txt", over_document, "text/plain")},
        headers=headers,
    )
    assert_too_large(refused)
    body, kind = multipart(b"z" * (settings.max_document_bytes + settings.max_body_bytes + 1))
    declared = await client.post(
        "/v1/documents/upload", content=body, headers={**headers, "content-type": kind}
    )
    assert_too_large(declared)
    streamed = await client.post(
        "/v1/documents/upload", content=chunked(body), headers={**headers, "content-type": kind}
    )
    assert_too_large(streamed)
    assert await count_documents(admin_sql, tenant) == 0
