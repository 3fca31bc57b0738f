"""The external API, for API keys of scope `external` only, with required fields checked."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
async def external(client, desk):
    tenant, headers = desk
    key = (
        await client.post(
            "/v1/api-keys", json={"name": "erp", "scopes": ["external"]}, headers=headers
        )
    ).json()["key"]
    read = (
        await client.post("/v1/api-keys", json={"name": "r", "scopes": ["read"]}, headers=headers)
    ).json()["key"]
    return tenant, headers, {"X-API-Key": key}, {"X-API-Key": read}


async def test_an_external_system_reports_and_searches(client, external, temporal_client):
    _, headers, key, _ = external
    created = await client.post(
        "/v1/external/incidents",
        json={
            "title": "Caldera parada",
            "description": "No arranca tras el apagón",
            "severity": "high",
            "reporter": "mes-line-3",
            "external_ref": "WO-7781",
        },
        headers=key,
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["reporter"] == "external:erp:mes-line-3" and incident["number"].startswith(
        "INC-"
    )
    shown = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert shown["timeline"][0]["data"] == {"external_ref": "WO-7781"}

    found = await client.get(
        "/v1/external/knowledge/search", params={"q": "caldera rearme"}, headers=key
    )
    assert found.status_code == 200 and found.json()["hits"][0]["title"] == "Caldera bloqueada"


async def test_fields_scopes_and_the_feature_switch(client, external):
    _, headers, key, read = external
    missing = await client.post(
        "/v1/external/incidents", json={"title": "x", "description": "y"}, headers=key
    )
    assert missing.status_code == 422 and "body.reporter" in missing.json()["detail"]
    no_query = await client.get("/v1/external/knowledge/search", headers=key)
    assert no_query.status_code == 422 and "query.q" in no_query.json()["detail"]
    assert (
        await client.get("/v1/external/knowledge/search", params={"q": "x"}, headers=read)
    ).status_code == 403
    assert (
        await client.get("/v1/external/knowledge/search", params={"q": "x"}, headers=headers)
    ).status_code == 403
    assert (
        await client.get("/v1/incidents", headers=key)
    ).status_code == 403  # external keys see only this API
    await client.patch("/v1/config", json={"features": {"external_api": False}}, headers=headers)
    off = await client.get("/v1/external/knowledge/search", params={"q": "x"}, headers=key)
    assert off.status_code == 403 and off.json()["type"].endswith("/feature-disabled")


async def test_external_searches_count_against_the_tenants_searches_per_minute(
    client, external, operator_headers
):
    tenant, headers, key, _ = external
    limited = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"searches_per_minute": 3},
        headers=operator_headers,
    )
    assert limited.status_code == 200
    inside = await client.post("/v1/search", json={"query": "caldera"}, headers=headers)
    assert inside.status_code == 200
    burst = await asyncio.gather(
        *(
            client.get("/v1/external/knowledge/search", params={"q": "caldera"}, headers=key)
            for _ in range(5)
        )
    )
    statuses = sorted(answer.status_code for answer in burst)
    assert statuses == [200, 200, 429, 429, 429]  # one window for both routes
    refused = next(answer for answer in burst if answer.status_code == 429)
    assert "searches a minute" in refused.json()["detail"] and refused.headers["retry-after"]
