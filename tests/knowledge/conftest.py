"""Knowledge tests: a tenant admin with a token, and waiting for an ingestion to finish."""

from __future__ import annotations

import pytest

from tests.conftest import bearer, login
from tests.workflows import started


@pytest.fixture
async def kb(client, make_tenant, make_user, worker):
    """A standard tenant and its admin's headers, with the session's worker running."""
    tenant = await make_tenant(tier="standard")
    admin = await make_user(tenant, "admin")
    return tenant, bearer((await login(client, tenant, admin))["access_token"])


async def ingested(temporal_client, tenant, document_id: str) -> str:
    """Wait for the document's workflow (started by the outbox relay) to finish."""
    handle = await started(temporal_client, f"{tenant.slug}/ingest/{document_id}")
    return await handle.result()


async def add_document(client, temporal_client, tenant, headers, *, title, text, tags=()):
    response = await client.post(
        "/v1/documents", json={"title": title, "text": text, "tags": list(tags)}, headers=headers
    )
    assert response.status_code == 202, response.text
    document = response.json()
    assert await ingested(temporal_client, tenant, document["id"]) == "ready"
    return document
