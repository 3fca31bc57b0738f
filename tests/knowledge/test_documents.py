"""Documents through the API and the ingestion workflow: JSON and uploads, dedup, quotas,
failures, deletion."""

from __future__ import annotations

import pytest

from tenantry.worker.queues import TENANT_ID
from tests.knowledge.conftest import add_document, ingested
from tests.pdf import CALDERA, simple_pdf

TEXT = "\n\n".join(
    f"Sección {i}. La caldera de condensación necesita una presión de 1,5 bar. " * 6
    for i in range(5)
)


async def test_json_document_is_accepted_then_ready(client, kb, temporal_client, admin_sql):
    tenant, headers = kb
    response = await client.post(
        "/v1/documents",
        json={"title": "Manual caldera", "text": TEXT, "tags": ["caldera"], "metadata": {"v": 2}},
        headers=headers,
    )
    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "pending" and response.headers["location"].endswith(created["id"])
    assert await ingested(temporal_client, tenant, created["id"]) == "ready"

    shown = (await client.get(f"/v1/documents/{created['id']}", headers=headers)).json()
    assert shown["status"] == "ready" and shown["chunk_count"] > 1 and shown["metadata"] == {"v": 2}
    rows = admin_sql.execute(
        "SELECT count(*), count(DISTINCT ordinal), count(embedding) FROM chunks WHERE document_id = %s",
        [created["id"]],
    ).fetchone()
    assert rows == (shown["chunk_count"],) * 3
    described = await temporal_client.get_workflow_handle(
        f"{tenant.slug}/ingest/{created['id']}"
    ).describe()
    assert described.typed_search_attributes.get(TENANT_ID) == tenant.slug


async def test_the_same_content_twice_is_one_document(client, kb, temporal_client):
    tenant, headers = kb
    first = await add_document(
        client, temporal_client, tenant, headers, title="A", text="Mismo contenido exacto."
    )
    again = await client.post(
        "/v1/documents", json={"title": "B", "text": "Mismo contenido exacto."}, headers=headers
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert len((await client.get("/v1/documents", headers=headers)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("filename", "content", "ctype", "expect"),
    [
        ("notas.txt", "Radiador frío por arriba: purgar el aire.".encode(), "text/plain", "purgar"),
        ("guia.md", b"# Router\n\nMantenga pulsado reset 10 segundos.", "text/markdown", "reset"),
        ("faq.html", b"<h1>Fibra</h1><p>Luz LOS roja: avisar a soporte.</p>", "text/html", "LOS"),
        ("caldera.pdf", simple_pdf(CALDERA), "application/pdf", "rearme"),
    ],
)
async def test_uploads_of_each_type(
    client, kb, temporal_client, admin_sql, filename, content, ctype, expect
):
    tenant, headers = kb
    response = await client.post(
        "/v1/documents/upload",
        files={"file": (filename, content, ctype)},
        data={"tags": "soporte, faq", "metadata": '{"source": "upload"}'},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    document = response.json()
    assert document["filename"] == filename and document["tags"] == ["faq", "soporte"]
    assert await ingested(temporal_client, tenant, document["id"]) == "ready"
    texts = " ".join(
        r[0]
        for r in admin_sql.execute(
            "SELECT text FROM chunks WHERE document_id = %s", [document["id"]]
        ).fetchall()
    )
    assert expect in texts


async def test_bad_uploads_are_refused_and_unreadable_ones_fail_with_a_reason(
    client, kb, temporal_client, admin_sql
):
    tenant, headers = kb
    png = await client.post(
        "/v1/documents/upload", files={"file": ("x.png", b"\x89PNG", "image/png")}, headers=headers
    )
    assert png.status_code == 415
    bad_meta = await client.post(
        "/v1/documents/upload",
        files={"file": ("a.txt", b"hola", "text/plain")},
        data={"metadata": "[1]"},
        headers=headers,
    )
    assert bad_meta.status_code == 422 and bad_meta.json()["errors"][0]["field"] == "body.metadata"
    assert (
        await client.post("/v1/documents", json={"title": "", "text": "x"}, headers=headers)
    ).status_code == 422

    broken = await client.post(
        "/v1/documents/upload",
        files={"file": ("roto.pdf", b"%PDF-1.4 not really", "application/pdf")},
        headers=headers,
    )
    assert broken.status_code == 202
    assert await ingested(temporal_client, tenant, broken.json()["id"]) == "failed"
    failed = (await client.get(f"/v1/documents/{broken.json()['id']}", headers=headers)).json()
    assert failed["status"] == "failed" and "PDF" in failed["error"]
    assert admin_sql.execute(
        "SELECT count(*) FROM chunks WHERE document_id = %s", [failed["id"]]
    ).fetchone() == (0,)


async def test_quotas_on_documents_and_daily_bytes(client, kb, operator_headers, admin_sql):
    tenant, headers = kb
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"documents": 1, "ingestion_bytes_per_day": 50},
        headers=operator_headers,
    )
    first = await client.post(
        "/v1/documents", json={"title": "uno", "text": "x" * 30}, headers=headers
    )
    assert first.status_code == 202
    second = await client.post(
        "/v1/documents", json={"title": "dos", "text": "y" * 10}, headers=headers
    )
    assert second.status_code == 403 and "'documents'" in second.json()["detail"]
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits", json={"documents": 10}, headers=operator_headers
    )
    too_big = await client.post(
        "/v1/documents", json={"title": "tres", "text": "z" * 40}, headers=headers
    )
    assert too_big.status_code == 413 and "'ingestion_bytes_per_day'" in too_big.json()["detail"]
    count = admin_sql.execute(
        "SELECT count(*) FROM documents WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert count == 1


async def test_delete_removes_the_document_and_its_chunks(client, kb, temporal_client, admin_sql):
    tenant, headers = kb
    document = await add_document(
        client, temporal_client, tenant, headers, title="Borrar", text=TEXT
    )
    assert (
        await client.delete(f"/v1/documents/{document['id']}", headers=headers)
    ).status_code == 204
    assert (await client.get(f"/v1/documents/{document['id']}", headers=headers)).status_code == 404
    left = admin_sql.execute(
        "SELECT (SELECT count(*) FROM chunks WHERE document_id = %s), (SELECT count(*) FROM document_contents WHERE document_id = %s)",
        [document["id"], document["id"]],
    ).fetchone()
    assert left == (0, 0)


async def test_members_write_viewers_only_read(client, kb, make_user):
    from tests.conftest import bearer, login

    tenant, _ = kb
    viewer = bearer(
        (await login(client, tenant, await make_user(tenant, "viewer")))["access_token"]
    )
    assert (await client.get("/v1/documents", headers=viewer)).status_code == 200
    assert (
        await client.post("/v1/documents", json={"title": "t", "text": "x"}, headers=viewer)
    ).status_code == 403
