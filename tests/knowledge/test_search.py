"""Hybrid search: finds by meaning across languages and by keyword, filters, highlights, and only
ever within the caller's tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import bearer, login
from tests.knowledge.conftest import add_document, ingested

LABELLED = Path(__file__).parents[1] / "data" / "knowledge_labelled.json"


async def search(client, headers, query, **extra):
    response = await client.post("/v1/search", json={"query": query, **extra}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["hits"]


async def test_hybrid_hits_carry_title_text_score_and_highlight(client, kb, temporal_client):
    tenant, headers = kb
    boiler = await add_document(
        client,
        temporal_client,
        tenant,
        headers,
        title="Caldera bloqueada",
        text="Si la caldera no enciende tras un corte de luz, pulse el botón de rearme durante tres segundos.",
        tags=["caldera"],
    )
    await add_document(
        client,
        temporal_client,
        tenant,
        headers,
        title="Router",
        text="Para reiniciar el router de fibra, mantenga pulsado el botón reset diez segundos.",
        tags=["red"],
    )
    hits = await search(client, headers, "caldera rearme")
    top = hits[0]
    assert top["document_id"] == boiler["id"] and top["title"] == "Caldera bloqueada"
    assert "<mark>" in top["highlight"] and top["score"] > 0
    english = await search(client, headers, "the boiler will not start after a blackout")
    assert english[0]["document_id"] == boiler["id"]  # across languages, by meaning
    only_network = await search(client, headers, "botón", filters={"tags": ["red"]})
    assert {h["title"] for h in only_network} == {"Router"}
    only_boiler = await search(client, headers, "botón", filters={"documents": [boiler["id"]]})
    assert {h["document_id"] for h in only_boiler} == {boiler["id"]}


async def test_a_read_key_searches_and_bad_queries_are_422(client, kb, temporal_client):
    tenant, headers = kb
    await add_document(
        client,
        temporal_client,
        tenant,
        headers,
        title="Wifi",
        text="Cambiar el canal del wifi mejora la señal.",
    )
    key = (
        await client.post("/v1/api-keys", json={"name": "r", "scopes": ["read"]}, headers=headers)
    ).json()["key"]
    assert (await search(client, {"X-API-Key": key}, "canal wifi"))[0]["title"] == "Wifi"
    for body in (
        {"query": ""},
        {"query": "x", "limit": 0},
        {"query": "x", "filters": {"owner": "me"}},
    ):
        assert (await client.post("/v1/search", json=body, headers=headers)).status_code == 422


async def test_near_identical_documents_in_two_tenants_stay_apart(
    client, kb, temporal_client, make_tenant, make_user
):
    tenant, headers = kb
    other = await make_tenant()
    other_headers = bearer(
        (await login(client, other, await make_user(other, "admin")))["access_token"]
    )
    mine = await add_document(
        client,
        temporal_client,
        tenant,
        headers,
        title="Termo",
        text="El termo eléctrico da agua tibia: revise el termostato A.",
    )
    theirs = await add_document(
        client,
        temporal_client,
        other,
        other_headers,
        title="Termo",
        text="El termo eléctrico da agua tibia: revise el termostato B.",
    )
    my_hits = await search(client, headers, "termo agua tibia")
    their_hits = await search(client, other_headers, "termo agua tibia")
    assert {h["document_id"] for h in my_hits} == {mine["id"]}
    assert {h["document_id"] for h in their_hits} == {theirs["id"]}
    filtered = await search(client, headers, "termo", filters={"documents": [theirs["id"]]})
    assert filtered == []  # naming another tenant's document finds nothing


async def test_searches_have_their_own_rate_limit(client, kb, operator_headers):
    tenant, headers = kb
    await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"searches_per_minute": 2},
        headers=operator_headers,
    )
    answers = [
        await client.post("/v1/search", json={"query": "x"}, headers=headers) for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["ratelimit-policy"] == '"searches";q=2;w=60'


async def test_recall_at_5_on_the_labelled_set(client, kb, temporal_client):
    tenant, headers = kb
    data = json.loads(LABELLED.read_text())
    ids = {}
    for passage in data["passages"]:
        response = await client.post(
            "/v1/documents",
            json={"title": passage["title"], "text": passage["text"]},
            headers=headers,
        )
        ids[response.json()["id"]] = passage["id"]
    for document_id in ids:
        assert await ingested(temporal_client, tenant, document_id) == "ready"
    found = 0
    for query in data["queries"]:
        hits = await search(client, headers, query["text"], limit=5)
        top = {ids[h["document_id"]] for h in hits}
        found += bool(top & set(query["relevant"]))
    recall = found / len(data["queries"])
    print(f"hybrid recall@5 on {len(data['queries'])} labelled queries: {recall:.3f}")
    assert recall >= 0.9


@pytest.mark.parametrize("language", ["spanish", "english"])
async def test_full_text_uses_the_tenant_language(client, kb, temporal_client, language):
    tenant, headers = kb
    await client.patch("/v1/config", json={"language": language}, headers=headers)
    await add_document(
        client,
        temporal_client,
        tenant,
        headers,
        title="Plural",
        text="Las calderas antiguas consumen más gas.",
    )
    hits = await search(client, headers, "antiguo consume")
    stemmed = "<mark>" in (hits[0]["highlight"] if hits else "")
    assert stemmed is (language == "spanish")  # only the Spanish stemmer joins antiguo and antiguas
