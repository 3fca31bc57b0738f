"""deploy/nginx: the template passes `nginx -t`, and nginx on loopback in front of three backends
balances, skips a dead replica, retries only what is safe to retry, limits logins, and hardens."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from deploy.tools.render_nginx import TEMPLATE, NginxValues, RenderError, placeholders, render
from tests.deploy.loopback import Loopback, loopback_values, self_signed_certificate, start_loopback
from tests.servers import require_binary

pytestmark = pytest.mark.slow

SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "x-xss-protection": "0",
    "referrer-policy": "strict-origin-when-cross-origin",
}


@pytest.fixture
def loopback():
    started = start_loopback()
    yield started
    started.stop()


def test_production_rendering_passes_nginx_t():
    nginx = require_binary("nginx", "nginx-light")
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-nginx-t-"))
    self_signed_certificate(workdir)
    values = loopback_values(
        workdir,
        ["10.0.1.11:8000", "10.0.1.12:8000", "10.0.1.13:8000"],
        trusted_proxies=("10.0.0.0/8", "192.168.0.0/16"),
        worker_processes="auto",
    )
    conf = workdir / "nginx.conf"
    conf.write_text(render(values))
    try:
        checked = subprocess.run(
            [nginx, "-t", "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "error.log")],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_every_placeholder_has_a_value_and_the_retry_budget_outlasts_the_read_timeout():
    text = TEMPLATE.read_text()
    rendered = render(NginxValues(upstreams=("10.0.1.11:8000",)))
    assert placeholders(text) and not placeholders(rendered)
    with pytest.raises(RenderError, match="next_upstream_timeout"):
        render(NginxValues(upstreams=("a:1",), read_timeout_s=30, next_upstream_timeout_s=5))
    # Every location inherits the server's timeouts: none may set a shorter budget of its own.
    assert rendered.count("proxy_next_upstream_timeout") == 1
    assert rendered.count("proxy_read_timeout") == 1


def test_round_robin_over_three_replicas(loopback: Loopback):
    with loopback.client() as client:
        statuses = [client.get("/v1/me").status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert Counter(a.backend for a in loopback.backends.seen()) == {0: 10, 1: 10, 2: 10}


def test_a_killed_replica_is_skipped_and_no_get_fails(loopback: Loopback):
    loopback.backends.kill(1)
    with loopback.client() as client:
        statuses = [client.get(f"/v1/documents?page={i}").status_code for i in range(30)]
        # A POST that could not connect was never sent, so it is safe to send elsewhere.
        posts = [client.post("/v1/incidents", json={"n": i}).status_code for i in range(6)]
    assert statuses == [200] * 30
    assert posts == [200] * 6
    served = Counter(a.backend for a in loopback.backends.seen())
    assert served[1] == 0
    assert served[0] + served[2] == 36


def test_post_is_never_resent_after_a_timeout_but_get_is_retried_elsewhere():
    loopback = start_loopback(read_timeout_s=2, next_upstream_timeout_s=3)
    loopback.backends.frozen.add(0)
    try:
        with loopback.client() as client:
            posts = [client.post("/v1/incidents", json={"n": i}).status_code for i in range(3)]
            # One POST reached the frozen replica and timed out: it may have taken effect there,
            # so nginx answers 504 rather than run it a second time on another replica.
            assert sorted(posts) == [200, 200, 504]
            assert len(loopback.backends.seen(method="POST")) == 3
            assert len(loopback.backends.seen(backend=0, method="POST")) == 1

            gets = [client.get("/v1/incidents").status_code for _ in range(3)]
        # One GET also reached the frozen replica; it timed out there and was retried elsewhere.
        assert gets == [200, 200, 200]
        assert len(loopback.backends.seen(backend=0, method="GET")) == 1
        assert len(loopback.backends.seen(method="GET")) == 4
    finally:
        loopback.stop()


def test_a_503_reaches_the_client_and_does_not_take_the_replica_out(loopback: Loopback):
    # The API's 503 (load shed, database out of reach) describes the platform, not the replica:
    # counted towards max_fails it took every replica out in turn under load ("no live upstreams").
    loopback.backends.unavailable.add(2)
    with loopback.client() as client:
        posts = [client.post("/v1/search", json={}) for _ in range(3)]
        gets = [client.get("/v1/search") for _ in range(9)]
    # Neither a POST nor a GET is re-sent: the client gets that replica's own 503, with its own
    # Retry-After and no second one from nginx.
    assert sorted(r.status_code for r in posts) == [200, 200, 503]
    assert len(loopback.backends.seen(method="POST")) == 3
    (refused,) = [r for r in posts if r.status_code == 503]
    assert refused.headers.get_list("retry-after") == ["7"]
    assert sorted(r.status_code for r in gets) == [200] * 6 + [503] * 3
    assert len(loopback.backends.seen(method="GET")) == 9
    # Four 503s within fail_timeout, max_fails 2: still in the rotation, a third of the GETs.
    assert len(loopback.backends.seen(backend=2, method="GET")) == 3


def test_login_zone_allows_five_a_minute_per_address(loopback: Loopback):
    login = {"tenant": "chogar", "email": "ana@chogar.example", "password": "x"}
    with loopback.client() as client:
        first = [client.post("/v1/auth/login", json=login).status_code for _ in range(5)]
        refused = client.post("/v1/auth/login", json=login)
        # Another X-Forwarded-For does not make another address: nginx trusts no proxy here.
        spoofed = client.post(
            "/v1/auth/login", json=login, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        operator = client.post("/v1/admin/auth/login", json=login)
        other_route = client.get("/v1/me")
    assert first == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert refused.headers["retry-after"] == "60"
    assert spoofed.status_code == 429
    assert operator.status_code == 429
    assert len(loopback.backends.seen(method="POST")) == 5
    assert other_route.status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client():
    # A load balancer on 127.0.0.1 in front of nginx: its X-Forwarded-For names the client, and
    # both the API and the login zone see that client, not the balancer.
    loopback = start_loopback(trusted_proxies=("127.0.0.1/32",))
    login = {"tenant": "chogar", "email": "ana@chogar.example", "password": "x"}
    try:
        with loopback.client() as client:
            first = [
                client.post(
                    "/v1/auth/login", json=login, headers={"X-Forwarded-For": "203.0.113.9"}
                ).status_code
                for _ in range(6)
            ]
            other = client.post(
                "/v1/auth/login", json=login, headers={"X-Forwarded-For": "198.51.100.7"}
            )
    finally:
        loopback.stop()
    assert first == [200] * 5 + [429]
    assert other.status_code == 200
    forwarded = [a.headers["x-forwarded-for"] for a in loopback.backends.seen()]
    assert forwarded == ["203.0.113.9"] * 5 + ["198.51.100.7"]


def test_security_headers_request_ids_and_forwarded_for(loopback: Loopback):
    with loopback.client() as client:
        kept = client.get(
            "/v1/me",
            headers={"X-Request-ID": "client-chosen-id-42", "X-Forwarded-For": "203.0.113.9"},
        )
        replaced = client.get("/v1/me", headers={"X-Request-ID": "not a valid id; x"})
        refused = client.get("/metrics")
    for response in (kept, replaced, refused):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (name, response.status_code)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert len(response.headers.get_list("x-request-id")) == 1
        assert "nginx/" not in response.headers.get("server", "")

    first, second = loopback.backends.seen()
    assert first.headers["x-request-id"] == "client-chosen-id-42"
    assert kept.headers["x-request-id"] == "client-chosen-id-42"
    assert re.fullmatch(r"[0-9a-f]{32}", second.headers["x-request-id"])
    assert replaced.headers["x-request-id"] == second.headers["x-request-id"]
    # nginx's own answers carry an id too, so a refused request can be found in its log.
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
    assert first.headers["x-forwarded-for"] == "127.0.0.1"
    assert first.headers["x-forwarded-proto"] == "https"


def _raw_get(loopback: Loopback, path: str) -> int:
    """The path exactly as written (an HTTP client would tidy `//metrics` away)."""
    context = ssl.create_default_context(cafile=str(loopback.cert))
    with (
        socket.create_connection(("127.0.0.1", loopback.https_port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        status_line = tls.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    "path", ["/metrics", "/metrics/", "//metrics", "/%6Detrics", "/./metrics", "/health/detailed"]
)
def test_metrics_and_detailed_health_are_not_public(loopback: Loopback, path: str):
    assert _raw_get(loopback, path) == 404
    assert _raw_get(loopback, "/health/ready") == 200
    assert [a.path for a in loopback.backends.seen()] == ["/health/ready"]


def test_body_limits_follow_the_api_limits(loopback: Loopback):
    json_limit = 1024 * 1024
    with loopback.client() as client:
        too_large = client.post("/v1/documents", content=b"x" * (json_limit + 1))
        upload = client.post("/v1/documents/upload", content=b"x" * (5 * json_limit))
        upload_too_large = client.post("/v1/documents/upload", content=b"x" * (21 * json_limit))
    assert too_large.status_code == 413
    assert too_large.json()["type"] == "https://tenantry.dev/problems/payload-too-large"
    assert upload.status_code == 200
    assert upload_too_large.status_code == 413
    assert [a.body_bytes for a in loopback.backends.seen()] == [5 * json_limit]


def test_plain_http_is_redirected_to_https(loopback: Loopback):
    with socket.create_connection(("127.0.0.1", loopback.http_port)) as conn:
        conn.sendall(b"GET /v1/me HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n")
        answer = conn.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 301")
    assert "Location: https://api.example/v1/me" in answer
    assert loopback.backends.seen() == []


def _handshake(port: int, version: ssl.TLSVersion, cafile: str | None = None) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw) as tls,
    ):
        return tls.version()


def _tls_1_1_server(cert: Path) -> tuple[socket.socket, int]:
    """A server that still speaks TLS 1.1: proof that the client below can, so a refusal by
    nginx is nginx's doing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(cert, cert.with_name("tls.key"))
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_one() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    threading.Thread(target=accept_one, daemon=True).start()
    return listener, listener.getsockname()[1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_only_tls_1_2_and_1_3_are_accepted(loopback: Loopback):
    assert _handshake(loopback.https_port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(loopback.https_port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    control, port = _tls_1_1_server(loopback.cert)
    try:
        assert _handshake(port, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"
    finally:
        control.close()
    with pytest.raises(ssl.SSLError):
        _handshake(loopback.https_port, ssl.TLSVersion.TLSv1_1)
