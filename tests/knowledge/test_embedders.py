"""The three embedders: the bundled e5, and Ollama and OpenAI-compatible servers spoken to over a
real socket; a provider whose dimension does not fit the index is refused at start."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tenantry.knowledge.embeddings import EmbedderMismatch, checked_embedder
from tenantry.settings import Settings


class Recorder:
    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.requests: list[tuple[str, dict]] = []


def serve(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            recorder.requests.append((self.path, body, self.headers.get("authorization")))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            vectors = [[float(len(t) % 7 + i) for i in range(recorder.dimension)] for t in texts]
            if self.path == "/api/embed":
                answer = {"model": body["model"], "embeddings": vectors}
            elif self.path == "/v1/embeddings":
                answer = {
                    "data": [
                        {"index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))
                    ]
                }
            else:
                self.send_error(404)
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def provider():
    servers = []

    def start(dimension: int):
        recorder = Recorder(dimension)
        server = serve(recorder)
        servers.append(server)
        return recorder, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


async def test_local_e5_embeds_passages_and_queries(embedder):
    passages = await embedder.passages(["La caldera no enciende", "Router sin conexión"])
    query = await embedder.query("boiler will not start")
    assert len(passages) == 2 and len(passages[0]) == 384 and len(query) == 384
    similarity = [sum(a * b for a, b in zip(p, query, strict=True)) for p in passages]
    assert similarity[0] > similarity[1]


@pytest.mark.parametrize(("kind", "path"), [("ollama", "/api/embed"), ("openai", "/v1/embeddings")])
async def test_remote_providers_speak_their_protocol(provider, kind, path):
    recorder, url = provider(384)
    settings = Settings(
        embedding_provider=kind,
        embedding_url=url,
        embedding_model="e5-small",
        embedding_api_key="sk-test",
        _env_file=None,
    )
    embedder = await checked_embedder(settings)
    vectors = await embedder.passages(["uno", "dos tres"])
    # "passage: uno" and "passage: dos tres" are 12 and 17 characters: 5 and 3 modulo 7.
    assert [v[:2] for v in vectors] == [
        [5.0, 6.0],
        [3.0, 4.0],
    ]  # in input order, whatever the answer's
    assert await embedder.query("hola") is not None
    paths = {p for p, _, _ in recorder.requests}
    assert paths == {path}
    sent = recorder.requests[1][1]
    assert sent["model"] == "e5-small" and sent["input"] == ["passage: uno", "passage: dos tres"]
    assert recorder.requests[1][2] == "Bearer sk-test"


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_a_provider_of_another_dimension_is_refused_at_start(provider, kind):
    _, url = provider(768)
    settings = Settings(embedding_provider=kind, embedding_url=url, _env_file=None)
    with pytest.raises(EmbedderMismatch, match="768-dimensional"):
        await checked_embedder(settings)


async def test_an_unreachable_provider_is_refused_at_start():
    from tests.servers import free_port

    settings = Settings(
        embedding_provider="ollama", embedding_url=f"http://127.0.0.1:{free_port()}", _env_file=None
    )
    with pytest.raises(EmbedderMismatch, match="could not be reached"):
        await checked_embedder(settings)
