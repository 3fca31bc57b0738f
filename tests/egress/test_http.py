"""HTTP under the egress policy against real servers on loopback: the connection goes to the
address that was judged (DNS rebinding), redirects are not followed, answers are capped, and a
server that never answers meets the deadline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tenantry.egress.http import (
    EgressTimeout,
    ResponseTooLarge,
    exchange,
    outbound_client,
)
from tenantry.egress.policy import EgressPolicy, EgressRefused

HUGE = 50_000_000


class Recording(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path.startswith("/huge"):
            self.send_response(200)
            if self.path == "/huge-declared":
                self.send_header("Content-Length", str(HUGE))
            self.end_headers()
            try:
                for _ in range(HUGE // 65536):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass  # the client stopped reading, as it should
        else:
            body = self.server.name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@contextmanager
def server(host: str, name: str) -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer((host, 0), Recording)
    httpd.daemon_threads = True
    httpd.seen, httpd.name = [], name
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def servers():
    """One server the allow-list admits (127.0.0.1), one on an address it does not (127.0.0.2),
    on the same port so that only the address tells them apart."""
    with server("127.0.0.1", "checked") as good:
        port = good.server_address[1]
        bad = ThreadingHTTPServer(("127.0.0.2", port), Recording)
        bad.daemon_threads = True
        bad.seen, bad.name = [], "rebound"
        thread = threading.Thread(target=bad.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield good, bad, port
        finally:
            bad.shutdown()
            bad.server_close()
            thread.join(10)


async def test_the_connection_goes_to_the_address_that_was_checked(servers):
    good, bad, port = servers
    asked = []

    async def rebinding(host, port):
        # A DNS server under an attacker's control: public-looking first, internal after.
        asked.append(host)
        return ["127.0.0.1"] if len(asked) == 1 else ["127.0.0.2"]

    policy = EgressPolicy(("127.0.0.1",), resolver=rebinding)
    async with outbound_client(policy, timeout=5) as http:
        reply = await exchange(
            http, "GET", f"http://rebind.example:{port}/x", max_bytes=100, deadline=5
        )
    assert reply.body == b"checked" and asked == ["rebind.example"]
    assert good.seen == [("/x", f"rebind.example:{port}")]  # with the original Host header
    assert bad.seen == []
    # Asked again, the name now resolves to an address the policy refuses: no connection.
    async with outbound_client(policy, timeout=5) as http:
        with pytest.raises(EgressRefused):
            await exchange(
                http, "GET", f"http://rebind.example:{port}/y", max_bytes=100, deadline=5
            )
    assert bad.seen == []


async def test_a_redirect_is_answered_not_followed(servers):
    good, _, port = servers
    async with outbound_client(EgressPolicy(("127.0.0.1",)), timeout=5) as http:
        reply = await exchange(
            http, "GET", f"http://127.0.0.1:{port}/redirect", max_bytes=100, deadline=5
        )
    assert reply.status == 302 and not reply.ok
    assert [path for path, _ in good.seen] == ["/redirect"]


@pytest.mark.parametrize("path", ["/huge", "/huge-declared"])
async def test_a_huge_answer_is_cut_at_the_cap(servers, path):
    _, _, port = servers
    async with outbound_client(EgressPolicy(("127.0.0.1",)), timeout=5) as http:
        with pytest.raises(ResponseTooLarge):
            await exchange(
                http, "GET", f"http://127.0.0.1:{port}{path}", max_bytes=1_000_000, deadline=30
            )


async def test_a_server_that_never_answers_meets_the_deadline():
    silent = socket.create_server(("127.0.0.1", 0))
    held = []
    accepting = threading.Thread(target=lambda: held.append(silent.accept()), daemon=True)
    accepting.start()
    try:
        port = silent.getsockname()[1]
        async with outbound_client(EgressPolicy(("127.0.0.1",)), timeout=30) as http:
            with pytest.raises(EgressTimeout):
                await exchange(
                    http, "GET", f"http://127.0.0.1:{port}/", max_bytes=100, deadline=0.5
                )
    finally:
        silent.close()
        for conn, _ in held:
            conn.close()


async def test_refused_targets_are_never_dialled():
    async with outbound_client(EgressPolicy(), timeout=5) as http:
        for url in ("http://127.0.0.1:9/", "http://[::1]:9/", "http://169.254.169.254/"):
            with pytest.raises(EgressRefused):
                await exchange(http, "GET", url, max_bytes=100, deadline=5)
