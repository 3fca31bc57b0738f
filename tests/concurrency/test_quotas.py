"""Each quota at exactly its limit, with many creations at once; deleting gives the room back.

Before, every parallel request counted, found room, then wrote: a tenant with 4 of 5 users made 7.
"""

from __future__ import annotations

import uuid
import zlib

from tests.concurrency.conftest import assert_no_5xx, at_once, statuses
from tests.conftest import PASSWORD

PARALLEL = 8


async def _limit(client, tenant, operator_headers, **limits) -> None:
    response = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits", json=limits, headers=operator_headers
    )
    assert response.status_code == 200, response.text


def _count(admin_sql, table: str, tenant, where: str = "true") -> int:
    return admin_sql.execute(
        f"SELECT count(*) FROM {table} WHERE tenant_id = %s AND {where}", [tenant.id]
    ).fetchone()[0]


async def test_users_quota_at_exactly_its_limit(client, team, operator_headers, admin_sql):
    tenant, owner, _ = team
    room = 3
    await _limit(client, tenant, operator_headers, users=_count(admin_sql, "users", tenant) + room)

    def body():
        return {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}

    # Half through the tenant's own route, half through the operator's.
    responses = await at_once(
        *(client.post("/v1/users", json=body(), headers=owner) for _ in range(PARALLEL // 2)),
        *(
            client.post(
                f"/v1/admin/tenants/{tenant.slug}/users", json=body(), headers=operator_headers
            )
            for _ in range(PARALLEL // 2)
        ),
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {201: room, 403: PARALLEL - room}, [
        r.text[:200] for r in responses
    ]
    assert {r.json()["type"] for r in responses if r.status_code == 403} == {
        "https://tenantry.dev/problems/quota-exhausted"
    }
    limit = await client.get(f"/v1/admin/tenants/{tenant.slug}/limits", headers=operator_headers)
    assert _count(admin_sql, "users", tenant) == limit.json()["effective"]["users"]

    # Removing a user gives its place back.
    created = next(r for r in responses if r.status_code == 201).json()
    assert (await client.delete(f"/v1/users/{created['id']}", headers=owner)).status_code == 204
    again = await at_once(*(client.post("/v1/users", json=body(), headers=owner) for _ in range(3)))
    assert statuses(again) == {201: 1, 403: 2}


async def test_api_keys_quota_at_exactly_its_limit(client, team, operator_headers, admin_sql):
    tenant, _, admin = team
    await _limit(client, tenant, operator_headers, api_keys=3)
    responses = await at_once(
        *(
            client.post("/v1/api-keys", json={"name": f"k{i}", "scopes": ["read"]}, headers=admin)
            for i in range(PARALLEL)
        )
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {201: 3, 403: PARALLEL - 3}
    assert _count(admin_sql, "api_keys", tenant, "revoked_at IS NULL") == 3

    revoked = next(r for r in responses if r.status_code == 201).json()
    assert (await client.delete(f"/v1/api-keys/{revoked['id']}", headers=admin)).status_code == 200
    again = await at_once(
        *(
            client.post("/v1/api-keys", json={"name": f"r{i}", "scopes": ["read"]}, headers=admin)
            for i in range(3)
        )
    )
    assert statuses(again) == {201: 1, 403: 2}


async def test_documents_quota_at_exactly_its_limit(client, team, operator_headers, admin_sql):
    tenant, _, admin = team
    await _limit(client, tenant, operator_headers, documents=3)
    responses = await at_once(
        *(
            client.post(
                "/v1/documents", json={"title": f"d{i}", "text": f"documento {i}"}, headers=admin
            )
            for i in range(PARALLEL)
        )
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {202: 3, 403: PARALLEL - 3}
    assert _count(admin_sql, "documents", tenant) == 3

    removed = next(r for r in responses if r.status_code == 202).json()
    assert (await client.delete(f"/v1/documents/{removed['id']}", headers=admin)).status_code == 204
    again = await at_once(
        *(
            client.post("/v1/documents", json={"title": "o", "text": f"otro {i}"}, headers=admin)
            for i in range(3)
        )
    )
    assert statuses(again) == {202: 1, 403: 2}


async def test_daily_bytes_quota_at_exactly_its_limit(client, team, operator_headers, admin_sql):
    tenant, _, admin = team
    await _limit(client, tenant, operator_headers, ingestion_bytes_per_day=100)
    responses = await at_once(
        *(
            client.post(
                "/v1/documents", json={"title": f"d{i}", "text": f"{i}" * 30}, headers=admin
            )
            for i in range(PARALLEL)
        )
    )
    assert_no_5xx(responses)
    assert statuses(responses) == {202: 3, 413: PARALLEL - 3}
    assert {r.json()["type"] for r in responses if r.status_code == 413} == {
        "https://tenantry.dev/problems/quota-too-large"
    }
    assert _count(admin_sql, "documents", tenant) == 3


def _compressed_pdf(text_lines: list[str]) -> bytes:
    """A one-page PDF whose content stream is deflated: small upload, large extracted text."""
    stream = zlib.compress(
        b"BT /F1 9 Tf 20 780 Td 10 TL "
        + b" ".join(b"(" + line.encode() + b") '" for line in text_lines)
        + b" ET",
        9,
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length "
        + str(len(stream)).encode()
        + b" /Filter /FlateDecode >>\nstream\n"
        + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


async def test_daily_bytes_count_the_extracted_text(
    client, team, operator_headers, temporal_client, worker, admin_sql
):
    from tests.knowledge.conftest import ingested

    tenant, _, admin = team
    pdf = _compressed_pdf(["la misma frase repetida una y otra vez"] * 60)
    assert len(pdf) < 1500  # about 2,300 characters of text once extracted
    await _limit(client, tenant, operator_headers, ingestion_bytes_per_day=2000)
    upload = await client.post(
        "/v1/documents/upload", files={"file": ("bomba.pdf", pdf, "application/pdf")}, headers=admin
    )
    assert upload.status_code == 202, upload.text
    document = upload.json()
    assert await ingested(temporal_client, tenant, document["id"]) == "failed"
    failed = (await client.get(f"/v1/documents/{document['id']}", headers=admin)).json()
    assert "ingestion_bytes_per_day" in failed["error"]
    assert _count(admin_sql, "chunks", tenant) == 0
    # A failed document gives its bytes back: the whole day's quota is there again.
    again = await client.post(
        "/v1/documents", json={"title": "t", "text": "x" * 1900}, headers=admin
    )
    assert again.status_code == 202, again.text
