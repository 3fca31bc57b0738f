"""The proposed resolution's text: from an LLM when one is configured (Ollama `/api/chat` or an
OpenAI-compatible `/v1/chat/completions`), otherwise, or when it fails, an extractive summary of
the best sources. Either way the sources are cited as [1], [2], …"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from tenantry.egress.http import exchange, outbound_client
from tenantry.egress.policy import EgressError, EgressPolicy
from tenantry.settings import Settings

SYSTEM = (
    "You are a support engineer. Propose a resolution for the incident using only the numbered "
    "sources. Cite them as [1], [2]. Answer in the incident's language, in at most 6 sentences. "
    "If the sources do not cover it, say so."
)
NO_SOURCE = "No source in the knowledge base covers this incident yet."
SENTENCES = re.compile(r"(?<=[.!?])\s+")
WORDS = re.compile(r"\w{4,}", re.UNICODE)


@dataclass(frozen=True)
class Source:
    ref: int
    title: str
    text: str


def _prompt(incident: str, sources: list[Source]) -> str:
    cited = "\n\n".join(f"[{s.ref}] {s.title}\n{s.text}" for s in sources)
    return f"Incident:\n{incident}\n\nSources:\n{cited}"


MAX_ANSWER_BYTES = 1_000_000


async def chat(
    settings: Settings,
    *,
    provider: str,
    incident: str,
    sources: list[Source],
    timeout_seconds: float,
) -> str:
    """The operator's LLM server, under the egress policy: its own host counts as allowed (the
    operator named it), but the answer is capped, redirects are not followed, and the whole
    exchange has one deadline."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _prompt(incident, sources)},
    ]
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = settings.llm_url.rstrip("/")
    policy = EgressPolicy(settings.egress_allowlist).trusting(urlsplit(base).hostname or "")
    if provider == "ollama":
        url, payload = (
            f"{base}/api/chat",
            {
                "model": settings.llm_model,
                "messages": messages,
                "stream": False,
                "options": {"temperature": 0.2},
            },
        )
    else:
        url, payload = (
            f"{base}/v1/chat/completions",
            {
                "model": settings.llm_model,
                "messages": messages,
                "temperature": 0.2,
            },
        )
    async with outbound_client(policy, timeout=timeout_seconds, headers=headers) as client:
        reply = await exchange(
            client, "POST", url, json=payload, max_bytes=MAX_ANSWER_BYTES, deadline=timeout_seconds
        )
    if not reply.ok:
        raise LlmFailed(f"HTTP {reply.status}")
    answer = reply.json()
    if provider == "ollama":
        return answer["message"]["content"].strip()
    return answer["choices"][0]["message"]["content"].strip()


class LlmFailed(EgressError):
    """The LLM server answered, but not with a success."""


def extractive(incident: str, sources: list[Source], *, per_source: int = 2) -> str:
    """The sentences of each source that share the most words with the incident, cited."""
    if not sources:
        return NO_SOURCE
    wanted = {w.lower() for w in WORDS.findall(incident)}
    parts = []
    for source in sources:
        sentences = [s for s in SENTENCES.split(" ".join(source.text.split())) if s]
        ranked = sorted(
            sentences, key=lambda s: -len(wanted & {w.lower() for w in WORDS.findall(s)})
        )
        chosen = [s for s in sentences if s in ranked[:per_source]]  # keep the source's order
        parts.append(f"{' '.join(chosen)} [{source.ref}]")
    return "\n".join(parts)


async def propose(
    settings: Settings,
    *,
    provider: str,
    incident: str,
    sources: list[Source],
    timeout_seconds: float,
) -> tuple[str, str]:
    """(text, how): how is `llm:<provider>`, `extractive`, or `extractive (llm failed: …)`."""
    if provider != "none" and settings.llm_url and sources:
        try:
            return await chat(
                settings,
                provider=provider,
                incident=incident,
                sources=sources,
                timeout_seconds=timeout_seconds,
            ), f"llm:{provider}"
        except (EgressError, KeyError, TypeError, ValueError) as error:
            return extractive(incident, sources), f"extractive (llm failed: {type(error).__name__})"
    return extractive(incident, sources), "extractive"
