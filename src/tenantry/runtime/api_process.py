"""One API process of `tenantry run`: uvicorn on the supervisor's listening socket, with uvloop
and httptools, and a graceful stop.

SIGTERM: readiness answers 503 for `drain_seconds` while requests are still served (a load
balancer stops sending new ones), then the socket is closed and in-flight requests get
`shutdown_grace_seconds` to finish. SIGINT (Ctrl-C): no drain, and at most a few seconds of grace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time

import structlog
import uvicorn
from fastapi import FastAPI

from tenantry.app import create_app
from tenantry.observability.logging import configure_logging
from tenantry.runtime.children import die_with_parent, tell_ready
from tenantry.settings import get_settings
from tenantry.tenancy.client_address import TrustedProxies

log = structlog.get_logger("tenantry.api")
INTERRUPT_GRACE_SECONDS = 3.0
_app: FastAPI | None = None


def app_factory() -> FastAPI:
    global _app
    _app = create_app()
    _app.state.draining = False
    _app.state.http_parser = "httptools"
    return _app


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, drain_seconds: float, ready_fd: int | None):
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.ready_fd = ready_fd
        self.drain_until: float | None = None
        self.announced = False

    def handle_exit(self, sig: int, frame) -> None:
        # Runs as a signal handler: only flags here; on_tick acts on them.
        if sig == signal.SIGTERM and self.drain_until is None and self.drain_seconds > 0:
            self.drain_until = time.monotonic() + self.drain_seconds
            if _app is not None:
                _app.state.draining = True
            return
        if sig == signal.SIGINT:
            self.config.timeout_graceful_shutdown = min(
                self.config.timeout_graceful_shutdown or INTERRUPT_GRACE_SECONDS,
                INTERRUPT_GRACE_SECONDS,
            )
        if _app is not None:
            _app.state.draining = True
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None:
            if not self.announced:
                self.announced = True
                log.info("draining: readiness answers 503", seconds=self.drain_seconds)
            if time.monotonic() >= self.drain_until:
                self.should_exit = True
        return await super().on_tick(counter)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            tell_ready(self.ready_fd)

    async def shutdown(self, sockets=None) -> None:
        # Close the listening socket before saying so: from that line on, a new connection is
        # refused (the supervisor has already let go of its copy).
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await asyncio.sleep(0)  # one turn of the loop: the listening handles are closed in it
        log.info(
            "stopped accepting; in-flight requests may finish",
            in_flight=len(self.server_state.tasks),
            grace_seconds=self.config.timeout_graceful_shutdown,
        )
        await super().shutdown(sockets=sockets)

    @contextlib.contextmanager
    def capture_signals(self):
        # As uvicorn's, without raising the signal again afterwards: this process exits 0.
        originals = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True, help="the listening socket")
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)
    die_with_parent()
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    config = uvicorn.Config(
        app_factory,  # the function itself: this module runs as __main__
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        # X-Forwarded-For is believed from the operator's proxies only: never by default (uvicorn
        # would otherwise trust it from loopback, where a local nginx or any local client sits).
        proxy_headers=bool(TrustedProxies(settings.trusted_proxies)),
        forwarded_allow_ips=TrustedProxies(settings.trusted_proxies).uvicorn_setting(),
    )
    server = DrainingServer(config, drain_seconds=settings.drain_seconds, ready_fd=args.ready_fd)
    listener = socket.socket(fileno=args.fd)
    server.run(sockets=[listener])
    sys.exit(0 if server.started else 3)


if __name__ == "__main__":
    main()
