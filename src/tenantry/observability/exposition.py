"""`/metrics`: what this process counted, or, under `tenantry run`, what every process counted.

`tenantry run` starts several API processes and a worker behind one socket, so a scrape reaches
whichever process accepts it. The supervisor therefore gives them all one
`PROMETHEUS_MULTIPROC_DIR` (under the home, emptied at each start): every process writes its
counts to files there and the answering process adds them up (prometheus_client's multiprocess
mode). The worker's counts (ingestion, triage, webhooks, the outbox) reach the scrape that way
too. Under Kubernetes each pod runs one API process, scraped on its own, and the worker pods are
scraped on their own port (`TENANTRY_WORKER_METRICS_PORT`).

The families read from PostgreSQL (`observability.state`) are added by the answering process only.
"""

from __future__ import annotations

import os

import structlog
from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tenantry.observability.metrics import REGISTRY

log = structlog.get_logger("tenantry.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def counted_registry() -> CollectorRegistry:
    """The registry of the counted metrics: this process's, or every process's files."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


def exposition(state=None) -> bytes:
    body = generate_latest(counted_registry())
    if state is not None:
        registry = CollectorRegistry()
        registry.register(state)
        body += generate_latest(registry)
    return body


async def metrics(request: Request) -> Response:
    state = getattr(request.app.state, "metrics_state", None)
    if state is not None:
        try:
            await state.refresh()
        except Exception as exc:  # the counted metrics still answer; the state is last known
            log.warning("metrics state not read", error=type(exc).__name__)
    return Response(exposition(state), media_type=CONTENT_TYPE_LATEST)
