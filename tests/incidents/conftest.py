"""Incident tests: a tenant with an admin, some knowledge, and helpers to wait on workflows."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import bearer, login
from tests.knowledge.conftest import add_document

BOILER = (
    "Si la caldera no enciende tras un corte de luz, pulse el botón de rearme durante tres segundos "
    "y compruebe que la presión está entre 1 y 1,5 bar."
)


@pytest.fixture
async def desk(client, make_tenant, make_user, temporal_client, worker):
    """A tenant whose knowledge explains the boiler reset; its admin's headers."""
    tenant = await make_tenant(tier="standard")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await add_document(
        client, temporal_client, tenant, headers, title="Caldera bloqueada", text=BOILER
    )
    return tenant, headers


def handle(temporal_client, tenant, number: str):
    return temporal_client.get_workflow_handle(
        f"{tenant.slug}/incident/{number.removeprefix('INC-')}"
    )


async def until_waiting(temporal_client, tenant, number: str) -> dict:
    """Ask the workflow (a query, answered by the worker) until it waits for a person."""
    for _ in range(400):
        state = await handle(temporal_client, tenant, number).query("state")
        if state["waiting_for_person"] and state["status"] == "awaiting_approval":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{number} never waited for a person: {state}")


async def report(client, headers, **fields) -> dict:
    body = {
        "title": "Caldera no enciende",
        "description": "Tras el apagón la caldera no arranca.",
        **fields,
    }
    response = await client.post("/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
