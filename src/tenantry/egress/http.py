"""HTTP under the egress policy: each request connects to the address its host was judged at,
with the original Host header and TLS SNI and certificate checks for the host name; redirects
are never followed; responses are read as a stream up to a cap, under an overall deadline.

httpcore pools connections by the address it dials, so each host name gets a transport of its
own: a TLS connection made for one name is never reused for another name at the same address.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from tenantry.egress.policy import DEFAULT_PORTS, EgressError, EgressPolicy, EgressRefused


class EgressTimeout(EgressError):
    """The other side did not answer in time."""


class EgressUnreachable(EgressError):
    """The connection failed (refused, reset, TLS) before an answer came."""


class ResponseTooLarge(EgressError):
    """The answer was longer than the caller will read."""


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: EgressPolicy, *, verify: Any = True) -> None:
        self.policy = policy
        self.verify = verify
        self._by_host: dict[tuple[str, str, int], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise EgressRefused("only http and https URLs are reached")
        port = url.port or DEFAULT_PORTS[url.scheme]
        target = await self.policy.resolve(url.scheme, url.host, port)
        # The Host header was set from the original URL when the request was built.
        request.url = url.copy_with(host=target.address)
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self._transport(url.scheme, url.host, port).handle_async_request(request)

    def _transport(self, scheme: str, host: str, port: int) -> httpx.AsyncHTTPTransport:
        key = (scheme, host.lower(), port)
        transport = self._by_host.get(key)
        if transport is None:
            transport = self._by_host[key] = httpx.AsyncHTTPTransport(
                verify=self.verify, retries=0, limits=httpx.Limits(max_connections=20)
            )
        return transport

    async def aclose(self) -> None:
        transports, self._by_host = list(self._by_host.values()), {}
        for transport in transports:
            await transport.aclose()


def outbound_client(
    policy: EgressPolicy, *, timeout: float, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """An httpx client that obeys the policy. No proxy from the environment (it would dial
    elsewhere than the judged address); no compressed answers (a small gzip can inflate to
    gigabytes before any cap sees it)."""
    return httpx.AsyncClient(
        transport=PinnedTransport(policy),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        headers={**(headers or {}), "Accept-Encoding": "identity"},
    )


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    deadline: float,
    **kwargs: Any,
) -> Reply:
    """One request and at most `max_bytes` of its answer, all within `deadline` seconds.

    A redirect comes back as it is (3xx, not followed); `max_bytes=0` reads no body at all.
    """
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(method, url, **kwargs) as response:
                body = await _read(response, max_bytes) if max_bytes else b""
                return Reply(response.status_code, response.headers, body)
    except TimeoutError as error:
        raise EgressTimeout(f"no answer within {deadline:g} seconds") from error
    except httpx.TimeoutException as error:
        raise EgressTimeout(f"timed out ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise EgressUnreachable(f"could not reach it ({type(error).__name__})") from error


async def _read(response: httpx.Response, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        raise ResponseTooLarge(f"the answer is {encoding}-compressed, which was not asked for")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"the answer is {declared} bytes; at most {max_bytes} are read")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"the answer is longer than {max_bytes} bytes")
    return bytes(body)
