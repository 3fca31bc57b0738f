"""Hybrid retrieval: nearest chunks by embedding (cosine) and best full-text matches in the
tenant's language, fused by reciprocal rank fusion.

Every query names `tenant_id = :tid` itself as well as relying on RLS: that is what lets the planner
use a tenant's own HNSW index (a partial index) once it has one, and search exactly through the
tenant's rows until then (recall 1.0).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

RRF_K = 60
CANDIDATES = 50
# Custom plans, so the planner sees the tenant's id and can pick its partial HNSW index;
# iterative scans, so filters on an HNSW scan still return enough rows. Local to the transaction:
# open it with `db.tenant(..., local_settings=VECTOR_SETTINGS)` and they cost no round trip.
VECTOR_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "hnsw.iterative_scan": "relaxed_order",
    "hnsw.ef_search": "100",
}
TUNE = text(
    "SELECT set_config('plan_cache_mode', :plan, true), "
    "set_config('hnsw.iterative_scan', :scan, true), set_config('hnsw.ef_search', :ef, true)"
)

NEAREST = """
SELECT id, embedding FROM chunks c
WHERE c.tenant_id = :tid AND c.embedding IS NOT NULL {filters}
ORDER BY c.embedding <=> CAST(:qv AS vector)
LIMIT :candidates
"""

SEARCH = """
WITH vec AS (
    SELECT c.id, row_number() OVER (ORDER BY c.embedding <=> CAST(:qv AS vector)) AS rank
    FROM ({nearest}) c
), kw AS (
    SELECT c.id, row_number() OVER (ORDER BY ts_rank_cd(c.tsv, q) DESC) AS rank
    FROM chunks c, websearch_to_tsquery(CAST(:lang AS regconfig), :qt) q
    WHERE c.tenant_id = :tid AND c.tsv @@ q {filters}
    ORDER BY ts_rank_cd(c.tsv, q) DESC
    LIMIT :candidates
), fused AS (
    SELECT id, sum(1.0 / (:rrf_k + rank)) AS score
    FROM (SELECT id, rank FROM vec UNION ALL SELECT id, rank FROM kw) ranked
    GROUP BY id
)
SELECT c.id, c.document_id, d.title, c.text, f.score, d.tags,
       1 - (c.embedding <=> CAST(:qv AS vector)) AS similarity,
       ts_headline(CAST(:lang AS regconfig), c.text, websearch_to_tsquery(CAST(:lang AS regconfig), :qt),
                   'MaxFragments=2, MinWords=5, MaxWords=30, StartSel=<mark>, StopSel=</mark>') AS highlight
FROM fused f
JOIN chunks c ON c.tenant_id = :tid AND c.id = f.id
JOIN documents d ON d.tenant_id = c.tenant_id AND d.id = c.document_id
ORDER BY f.score DESC, c.id
LIMIT :limit
"""


@dataclass(frozen=True)
class Hit:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    text: str
    score: float
    highlight: str
    similarity: float | None = None  # cosine similarity to the query, when the chunk is embedded
    tags: tuple[str, ...] = ()


async def search(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    language: str,
    query: str,
    query_vector: list[float],
    limit: int,
    tags: list[str] | None = None,
    document_ids: list[uuid.UUID] | None = None,
) -> list[Hit]:
    await tune_for_vectors(session)
    filters, params = "", {}
    if tags:
        filters += " AND c.tags @> CAST(:tags AS text[])"
        params["tags"] = tags
    if document_ids:
        filters += " AND c.document_id = ANY(CAST(:docs AS uuid[]))"
        params["docs"] = document_ids
    rows = await session.execute(
        text(SEARCH.format(nearest=NEAREST.format(filters=filters), filters=filters)),
        {
            "tid": tenant_id,
            "qv": vector_literal(query_vector),
            "qt": query,
            "lang": language,
            "candidates": max(CANDIDATES, limit),
            "rrf_k": RRF_K,
            "limit": limit,
            **params,
        },
    )
    return [
        Hit(
            r.id,
            r.document_id,
            r.title,
            r.text,
            float(r.score),
            r.highlight,
            None if r.similarity is None else float(r.similarity),
            tuple(r.tags),
        )
        for r in rows
    ]


async def tune_for_vectors(session: AsyncSession) -> None:
    """VECTOR_SETTINGS for the session's transaction: nothing to do when it was opened with them,
    otherwise one round trip."""
    if session.info.get("local_settings", {}).items() >= VECTOR_SETTINGS.items():
        return
    values = VECTOR_SETTINGS
    await session.execute(
        TUNE,
        {
            "plan": values["plan_cache_mode"],
            "scan": values["hnsw.iterative_scan"],
            "ef": values["hnsw.ef_search"],
        },
    )


async def nearest(
    session: AsyncSession, *, tenant_id: uuid.UUID, query_vector: list[float], k: int
) -> list[uuid.UUID]:
    """The vector half of `search` alone: the tenant's k nearest chunks."""
    await tune_for_vectors(session)
    rows = await session.execute(
        text(NEAREST.format(filters="")),
        {"tid": tenant_id, "qv": vector_literal(query_vector), "candidates": k},
    )
    return [r.id for r in rows]


def vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
