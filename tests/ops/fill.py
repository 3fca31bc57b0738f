"""A tenant with something in every DATA table: users and their sessions, API keys, config
versions, documents with chunks and vectors, incidents with timelines, webhooks with deliveries,
and the audit chain all of that wrote. Used by the tests and by bench/backup.py."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import text

from tenantry.knowledge.models import DIMENSION
from tenantry.knowledge.search import vector_literal

INSERT_DOCUMENT = text(
    "INSERT INTO documents (tenant_id, id, title, source_type, content_hash, size_bytes, tags, "
    "metadata, status, chunk_count, created_by, created_at, updated_at) VALUES "
    "(:t, :d, :title, 'txt', :h, 0, '{}', CAST(:meta AS jsonb), 'ready', :n, 'test', now(), now())"
)
INSERT_CHUNK = text(
    "INSERT INTO chunks (tenant_id, id, document_id, ordinal, text, embedding, tsv, tags, "
    "created_at) VALUES (:t, :id, :d, :o, :x, CAST(:v AS vector), to_tsvector('simple', :x), "
    "'{}', now())"
)


async def add_chunks(db, tenant_id, *, documents: int, chunks_per_document: int, seed: int = 7):
    """Documents with chunks and (random, unit-less) vectors, written straight to the tables."""
    rng = random.Random(seed)
    for n in range(documents):
        async with db.tenant(tenant_id) as session:
            document_id = uuid.uuid4()
            await session.execute(
                INSERT_DOCUMENT,
                {
                    "t": tenant_id,
                    "d": document_id,
                    "title": f"Manual {n}",
                    "h": uuid.uuid4().hex,
                    "meta": f'{{"source": "doc-{n}", "related": "{document_id}"}}',
                    "n": chunks_per_document,
                },
            )
            await session.execute(
                INSERT_CHUNK,
                [
                    {
                        "t": tenant_id,
                        "id": uuid.uuid4(),
                        "d": document_id,
                        "o": i,
                        "x": f"caldera {n} paso {i}: rearme {rng.randint(1, 999)} y presión",
                        "v": vector_literal([rng.uniform(-1, 1) for _ in range(DIMENSION)]),
                    }
                    for i in range(chunks_per_document)
                ],
            )


async def fill_through_api(client, headers) -> dict:
    """What an admin does: a key, a config change, a webhook (for `document.ready`, which nothing
    here raises: documents are written straight to the tables, never ingested, so no workflow of
    the session's worker writes to the tenant while a test compares it)."""
    made = {}
    key = await client.post(
        "/v1/api-keys", json={"name": "erp", "scopes": ["read"]}, headers=headers
    )
    assert key.status_code == 201, key.text
    made["api_key"] = key.json()
    config = await client.patch(
        "/v1/config", json={"branding": {"display_name": "Copia"}}, headers=headers
    )
    assert config.status_code == 200, config.text
    hook = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["document.ready"]},
        headers=headers,
    )
    assert hook.status_code == 201, hook.text
    made["webhook"] = hook.json()
    return made


async def add_incidents(db, tenant_id, endpoint_id: str, *, count: int = 2) -> None:
    """Resolved incidents with their timelines and a failed delivery each, as their workflows
    leave them (written straight to the tables: no workflow runs on them afterwards)."""
    async with db.tenant(tenant_id) as session:
        await session.execute(
            text("INSERT INTO incident_counters (tenant_id, last_number) VALUES (:t, :n)"),
            {"t": tenant_id, "n": count},
        )
        for number in range(1, count + 1):
            incident_id = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO incidents (tenant_id, id, number, title, description, severity, "
                    "reporter, status, sources, resolution, resolved_by, resolved_at, created_at, "
                    "updated_at) VALUES (:t, :i, :n, 'Caldera no enciende', 'Tras el apagón.', "
                    "'medium', 'ana', 'resolved', CAST(:sources AS jsonb), 'Rearme', 'ana', now(), "
                    "now(), now())"
                ),
                {
                    "t": tenant_id,
                    "i": incident_id,
                    "n": number,
                    "sources": f'[{{"incident": "{incident_id}"}}]',
                },
            )
            for kind in ("reported", "resolved"):
                await session.execute(
                    text(
                        "INSERT INTO incident_events (tenant_id, id, incident_id, at, actor, kind, "
                        "data) VALUES (:t, :e, :i, now(), 'ana', :k, CAST(:d AS jsonb))"
                    ),
                    {
                        "t": tenant_id,
                        "e": uuid.uuid4(),
                        "i": incident_id,
                        "k": kind,
                        "d": f'{{"incident_id": "{incident_id}"}}',
                    },
                )
            await session.execute(
                text(
                    "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, "
                    "event_type, payload, status, attempts, last_error, created_at, updated_at) "
                    "VALUES (:t, :d, :e, :ev, 'incident.resolved', CAST(:p AS jsonb), 'failed', 2, "
                    "'HTTP 503', now(), now())"
                ),
                {
                    "t": tenant_id,
                    "d": uuid.uuid4(),
                    "e": endpoint_id,
                    "ev": f"evt_{number}",
                    "p": f'{{"incident": "{incident_id}"}}',
                },
            )
