"""`/health/live`, `/health/ready` and `/metrics` of a worker, for Kubernetes' probes, Docker's
check and Prometheus.

A worker serves no HTTP otherwise, so this is a few lines of asyncio rather than the API's app:
liveness answers while the event loop runs; readiness while the worker polls its task queue and
reaches Temporal and PostgreSQL, and 503 (`"status": "draining"`) once SIGTERM has come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tenantry.observability.metrics import REGISTRY

log = structlog.get_logger("tenantry.worker")
Check = Callable[[], Awaitable[None]]
CHECK_SECONDS = 2.0
REQUEST_LINE_LIMIT = 8192


class WorkerHealth:
    def __init__(
        self, checks: dict[str, Check], *, before_scrape: Callable[[], object] | None = None
    ) -> None:
        self.checks = checks
        # Called before answering /metrics: Temporal's SDK metrics, drained up to this moment.
        self.before_scrape = before_scrape
        self.polling = False
        self.draining = False
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._answer, host, port)
        log.info("worker health", host=host, port=port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def ready(self) -> tuple[int, dict]:
        if self.draining:
            return 503, {"status": "draining", "checks": {}}
        if not self.polling:
            return 503, {"status": "starting", "checks": {}}
        results = {}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), CHECK_SECONDS)
                results[name] = "ok"
            except Exception as error:  # a probe reports a failure, it does not raise it
                results[name] = f"down ({type(error).__name__})"
        ok = all(value == "ok" for value in results.values())
        return (200 if ok else 503), {"status": "ok" if ok else "unavailable", "checks": results}

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CHECK_SECONDS)
            method, path, *_ = request[:REQUEST_LINE_LIMIT].decode("latin-1").split(" ", 2)
            kind = "application/json"
            if method not in ("GET", "HEAD"):
                status, body = 405, {"status": "method not allowed"}
            elif path == "/health/live":
                status, body = 200, {"status": "ok"}
            elif path == "/health/ready":
                status, body = await self.ready()
            elif path == "/metrics":
                status, body, kind = 200, None, CONTENT_TYPE_LATEST
                if self.before_scrape is not None:
                    with contextlib.suppress(Exception):  # the rest of the scrape still answers
                        self.before_scrape()
            else:
                status, body = 404, {"status": "not found"}
            payload = generate_latest(REGISTRY) if body is None else json.dumps(body).encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: {kind}\r\n"
                f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else payload))
            await writer.drain()
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
