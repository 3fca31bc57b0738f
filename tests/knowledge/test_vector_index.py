"""Per-tenant vector search: exact below the threshold; a tenant's own HNSW index past it, used only
for that tenant, agreeing with exact search at recall@10 >= 0.95 on real embeddings."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from sqlalchemy import text

from tenantry.knowledge import search as retrieval
from tenantry.knowledge.promotion import index_name, promote
from tenantry.knowledge.search import vector_literal

SUBJECTS = [
    "la caldera",
    "el router",
    "la fibra",
    "el radiador",
    "el móvil",
    "la impresora",
    "el termo",
    "the boiler",
    "the router",
    "the printer",
    "the VPN",
    "the laptop",
    "the heat pump",
]
PROBLEMS = [
    "no enciende",
    "pierde presión",
    "hace ruido",
    "se reinicia",
    "va lenta",
    "da error E{n}",
    "won't start",
    "keeps dropping",
    "shows error {n}",
    "is very slow",
    "makes a clicking noise",
]
AFTER = [
    "tras un corte de luz",
    "por la noche",
    "después de actualizar",
    "after an update",
    "every morning",
    "when it rains",
    "desde ayer",
    "on the second floor",
]


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(PROBLEMS).format(n=rng.randint(1, 99))} {rng.choice(AFTER)} "
        f"(caso {i}, planta {rng.randint(1, 9)})"
        for i in range(count)
    ]


async def fill(db, tenant, embedder, texts: list[str]) -> np.ndarray:
    vectors = np.array(await embedder.passages(texts), dtype=np.float32)
    async with db.tenant(tenant.id) as session:
        document_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO documents (tenant_id, id, title, source_type, content_hash, size_bytes, tags, "
                "metadata, status, chunk_count, created_by, created_at, updated_at) VALUES "
                "(:t, :d, 'bulk', 'txt', :h, 0, '{}', '{}', 'ready', :n, 'test', now(), now())"
            ),
            {"t": tenant.id, "d": document_id, "h": uuid.uuid4().hex, "n": len(texts)},
        )
        await session.execute(
            text(
                "INSERT INTO chunks (tenant_id, id, document_id, ordinal, text, embedding, tsv, tags, created_at) "
                "VALUES (:t, :id, :d, :o, :x, CAST(:v AS vector), to_tsvector('simple', :x), '{}', now())"
            ),
            [
                {
                    "t": tenant.id,
                    "id": uuid.uuid4(),
                    "d": document_id,
                    "o": i,
                    "x": x,
                    "v": vector_literal(v.tolist()),
                }
                for i, (x, v) in enumerate(zip(texts, vectors, strict=True))
            ],
        )
    return vectors


async def plan(db, tenant, vector) -> str:
    """The plan when an ordered index scan is preferred to sorting, as it is at real sizes.

    With a few hundred rows a sort is cheaper and the planner rightly sorts; past the real
    threshold (20,000 chunks) it is the other way round. Disabling sorts shows which indexes can
    serve this tenant's nearest-neighbour query at all.
    """
    async with db.tenant(tenant.id) as session:
        await retrieval.tune_for_vectors(session)
        await session.execute(text("SET LOCAL enable_sort = off"))
        rows = await session.execute(
            text("EXPLAIN " + retrieval.NEAREST.format(filters="")),
            {"tid": tenant.id, "qv": vector_literal(vector), "candidates": 10},
        )
        return "\n".join(r[0] for r in rows)


@pytest.mark.slow
async def test_promotion_builds_an_index_for_one_tenant_with_high_recall(
    db, stack, make_tenant, embedder
):
    big, small = await make_tenant(), await make_tenant()
    corpus = sentences(320, seed=1)
    await fill(db, big, embedder, corpus)
    await fill(db, small, embedder, sentences(40, seed=2))
    queries = [np.array(await embedder.query(q)) for q in sentences(20, seed=3)]

    async def exact_ids(tenant, q):
        async with db.tenant(tenant.id) as session:
            await session.execute(
                text("SET LOCAL enable_indexscan = off")
            )  # brute force, the truth
            return await retrieval.nearest(
                session, tenant_id=tenant.id, query_vector=q.tolist(), k=10
            )

    truth = [await exact_ids(big, q) for q in queries]
    assert index_name(big.id) not in await plan(db, big, queries[0].tolist())

    built = promote(stack.admin_url, threshold=300)
    assert [p.tenant_id for p in built] == [big.id]  # the small tenant stays on exact search
    assert promote(stack.admin_url, threshold=300) == []  # already done: nothing to build

    assert index_name(big.id) in await plan(db, big, queries[0].tolist())
    assert index_name(big.id) not in await plan(db, small, queries[0].tolist())
    found = 0
    for q, expected in zip(queries, truth, strict=True):
        async with db.tenant(big.id) as session:
            await session.execute(text("SET LOCAL enable_sort = off"))  # through the HNSW index
            got = await retrieval.nearest(session, tenant_id=big.id, query_vector=q.tolist(), k=10)
        found += len(set(got) & set(expected))
    recall = found / (10 * len(queries))
    print(f"recall@10 of {big.slug}'s HNSW index against exact search: {recall:.3f}")
    assert recall >= 0.95
