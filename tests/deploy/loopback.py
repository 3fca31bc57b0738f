"""nginx on loopback in front of tiny HTTP backends that record what reaches them.

The backends stand in for API replicas only in the nginx tests: what is under test is nginx's
configuration (balancing, retries, limits, headers), and a backend that can be frozen on demand
makes the retry cases exact.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from deploy.tools.render_nginx import NginxValues, render
from tests.servers import free_port, require_binary


@dataclass
class Arrival:
    backend: int
    method: str
    path: str
    headers: dict[str, str]
    body_bytes: int


@dataclass
class Backends:
    """Replicas that answer 200 with their index, or hold every request while frozen."""

    count: int
    arrivals: list[Arrival] = field(default_factory=list)
    servers: list[ThreadingHTTPServer] = field(default_factory=list)
    frozen: set[int] = field(default_factory=set)
    unavailable: set[int] = field(default_factory=set)
    thaw: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> list[str]:
        for index in range(self.count):
            server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(index))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        return [f"127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def kill(self, index: int) -> None:
        """Stop one replica and close its socket: connections to it are refused from now on."""
        self.servers[index].shutdown()
        self.servers[index].server_close()

    def stop(self) -> None:
        self.thaw.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def seen(self, *, backend: int | None = None, method: str | None = None) -> list[Arrival]:
        with self.lock:
            return [
                a
                for a in self.arrivals
                if (backend is None or a.backend == backend)
                and (method is None or a.method == method)
            ]

    def _handler(self, index: int) -> type[BaseHTTPRequestHandler]:
        backends = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                received = 0
                while received < length:
                    chunk = self.rfile.read(min(65536, length - received))
                    if not chunk:
                        break
                    received += len(chunk)
                arrival = Arrival(
                    index,
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    received,
                )
                with backends.lock:
                    backends.arrivals.append(arrival)
                if index in backends.frozen:
                    backends.thaw.wait()
                    return
                if index in backends.unavailable:
                    # As the API answers when shedding load: 503 with its own Retry-After.
                    self.send_response(503)
                    self.send_header("Retry-After", "7")
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"backend": index}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                # The API echoes the request id it was given, as tenantry's middleware does.
                if "x-request-id" in arrival.headers:
                    self.send_header("X-Request-ID", arrival.headers["x-request-id"])
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        return Handler


@dataclass
class Loopback:
    nginx: str
    workdir: Path
    backends: Backends
    https_port: int
    http_port: int
    cert: Path
    conf: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            verify=ssl.create_default_context(cafile=str(self.cert)),
            timeout=30,
            **kwargs,
        )

    def stop(self) -> None:
        subprocess.run(
            [self.nginx, "-c", str(self.conf), "-p", f"{self.workdir}/", "-s", "stop"],
            capture_output=True,
        )
        self.backends.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    openssl = require_binary("openssl", "openssl")
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def loopback_values(workdir: Path, upstreams: list[str], **overrides) -> NginxValues:
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    (workdir / "tmp").mkdir(exist_ok=True)
    defaults = {
        "upstreams": tuple(upstreams),
        "server_name": "localhost",
        "https_listen": f"127.0.0.1:{free_port()}",
        "http_listen": f"127.0.0.1:{free_port()}",
        "tls_cert": str(cert),
        "tls_key": str(key),
        "worker_processes": "2",
        "pid_file": str(workdir / "nginx.pid"),
        "error_log": str(workdir / "error.log"),
        "access_log": str(workdir / "access.log"),
        "temp_dir": str(workdir / "tmp"),
        # A self-signed certificate has no OCSP responder to staple.
        "ssl_stapling": False,
    }
    return NginxValues(**{**defaults, **overrides})


def start_loopback(count: int = 3, **overrides) -> Loopback:
    nginx = require_binary("nginx", "nginx-light")
    # Not pytest's tmp_path: nginx's workers drop to `nobody` when run as root and must reach it.
    workdir = Path(tempfile.mkdtemp(prefix="tenantry-nginx-"))
    workdir.chmod(0o755)
    cert, _ = self_signed_certificate(workdir)
    backends = Backends(count)
    values = loopback_values(workdir, backends.start(), **overrides)
    conf = workdir / "nginx.conf"
    conf.write_text(render(values))
    # nginx returns once its master has bound the ports and gone to the background, so the
    # listening sockets exist when this call returns: no waiting needed.
    started = subprocess.run(
        [nginx, "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "error.log")],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        backends.stop()
        raise AssertionError(f"nginx did not start: {started.stderr}")
    return Loopback(
        nginx=nginx,
        workdir=workdir,
        backends=backends,
        https_port=int(values.https_listen.rsplit(":", 1)[1]),
        http_port=int(values.http_listen.rsplit(":", 1)[1]),
        cert=cert,
        conf=conf,
    )
