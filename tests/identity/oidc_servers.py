"""Real OpenID providers on loopback (`oidc-provider-mock`, a Flask app on werkzeug), and a
browser's part of the authorization code flow against them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving


@contextmanager
def provider() -> Iterator[str]:
    """A provider that requires a nonce; yields its issuer URL."""
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


async def set_person(issuer: str, sub: str, **claims) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(f"{issuer}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text


async def authorize(authorization_url: str, sub: str) -> str:
    """The person signs in at the provider as `sub`; returns where it sends the browser back."""
    async with httpx.AsyncClient() as http:
        response = await http.post(authorization_url, data={"sub": sub})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
