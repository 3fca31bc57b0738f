"""The components behind `/health/detailed` and the `tenantry_dependency_up` gauge: each check
says status (ok, degraded, down), latency and what it saw, and never raises.

Readiness (`/health/ready`) uses the database and, after a longer window, the workers (see
`readiness`), not Temporal or the LLM: the API keeps serving and the outbox keeps its work while
they are away. Those are reported here and alerted on instead (`LLMUnhealthy`, and `workers`
degraded when no worker polled the shared task queue for `WORKERS_STALE_SECONDS`:
`WorkersNotPolling`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError, RPCStatusCode

from tenantry.db.migrate import head_revision
from tenantry.knowledge.models import DIMENSION
from tenantry.tenants.dedicated import dedicated_placements
from tenantry.tenants.namespaces import dedicated_task_queue, temporal_namespace

CHECK_TIMEOUT_SECONDS = 3.0
# Temporal keeps a poller listed for about 5 minutes; a worker long-polls every minute at most.
WORKERS_STALE_SECONDS = 120.0
OUTBOX_LATE_SECONDS = 300.0
Component = dict[str, Any]


async def database(state) -> Component:
    async with state.db.control() as session:
        current = await session.scalar(text("SELECT version_num FROM alembic_version"))
    head = head_revision()
    pool = state.db.engine.pool
    return {
        "status": "ok" if current == head else "degraded",
        "migration": current,
        "head": head,
        "pool_in_use": pool.checkedout(),
        "pool_size": pool.size(),
    }


async def _describe(client, namespace: str, queue: str, kind) -> Any:
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=kind,
            report_stats=True,
        )
    )


async def temporal(state) -> Component:
    client = getattr(state, "temporal", None)
    if client is None:
        return {"status": "ok", "configured": False}
    await client.service_client.check_health()
    return {"status": "ok", "namespace": client.namespace}


async def describe_queue(
    client, queue: str, namespace: str | None = None
) -> dict[str, dict[str, Any]]:
    """Pollers, seconds since the last poll and backlog of `queue` (in `namespace`, by default
    the client's), workflow and activity. A namespace not registered yet has neither."""
    found = {}
    now = time.time()
    for name, kind in (
        ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ):
        try:
            described = await _describe(client, namespace or client.namespace, queue, kind)
        except RPCError as error:
            if namespace is None or error.status != RPCStatusCode.NOT_FOUND:
                raise
            found[name] = {"pollers": 0, "last_poll_seconds_ago": None, "backlog": 0}
            continue
        polls = [p.last_access_time.ToSeconds() for p in described.pollers]
        found[name] = {
            "pollers": len(polls),
            "last_poll_seconds_ago": round(now - max(polls), 1) if polls else None,
            "backlog": described.stats.approximate_backlog_count,
        }
    return found


def last_poll_seconds_ago(view: dict[str, dict[str, Any]]) -> float | None:
    """The freshest poll of any kind on a queue, or None when Temporal lists no poller."""
    ages = [
        k["last_poll_seconds_ago"] for k in view.values() if k["last_poll_seconds_ago"] is not None
    ]
    return min(ages) if ages else None


def polled_within(view: dict[str, dict[str, Any]], seconds: float) -> bool:
    age = last_poll_seconds_ago(view)
    return age is not None and age <= seconds


async def task_queues(state) -> list[tuple[str, str]]:
    """(namespace, queue): the shared task queue, then the dedicated queue of every tenant given
    dedicated workers (in whichever cell it is placed), in its own namespace if it has one."""
    platform = state.temporal.namespace
    placements = await dedicated_placements(state.db)
    return [
        (platform, state.settings.pool_task_queue),
        *(
            (temporal_namespace(slug, own=own, platform=platform), dedicated_task_queue(slug))
            for slug, own in sorted(placements.items())
        ),
    ]


async def workers(state) -> Component:
    """Pollers on every task queue the platform serves, as Temporal's DescribeTaskQueue reports
    them. Degraded when no worker polled the shared queue for `WORKERS_STALE_SECONDS`. A
    dedicated queue with work waiting and no worker is degraded in its own entry (a dedicated pool
    scaled to zero while its tenant is idle waits for nobody), but it is that tenant's trouble, not
    the platform's: it shows per queue here and in `tenantry_temporal_task_queue_pollers`, and
    does not turn the component (nor `/health/detailed`) degraded."""
    client = getattr(state, "temporal", None)
    if client is None:
        return {"status": "ok", "configured": False}
    places = await task_queues(state)
    views = await asyncio.gather(
        *(describe_queue(client, queue, namespace) for namespace, queue in places)
    )
    shared = places[0][1]
    queues = {}
    for index, ((namespace, name), view) in enumerate(zip(places, views, strict=True)):
        fresh = polled_within(view, WORKERS_STALE_SECONDS)
        waiting = sum(kind["backlog"] for kind in view.values())
        ok = fresh if index == 0 else fresh or waiting == 0
        queues[name] = {
            "status": "ok" if ok else "degraded",
            "shared": index == 0,
            "namespace": namespace,
            **view,
        }
    return {
        "status": queues[shared]["status"],
        "task_queue": shared,
        "stale_after_seconds": WORKERS_STALE_SECONDS,
        **views[0],
        "queues": queues,
    }


async def embedder(state) -> Component:
    # Its dimension was checked against the index when the process started.
    return {"status": "ok", "provider": state.embedder.name, "dimension": DIMENSION}


async def redis(state) -> Component:
    concurrency = state.concurrency
    # Redis behind the in-process fallback (`FallbackConcurrency`) is Redis configured all the same.
    backend = getattr(concurrency, "primary", concurrency)
    client = getattr(backend, "client", None)
    if client is None:
        return {"status": "ok", "configured": False, "limits": "in this process"}
    await client.ping()
    return {"status": "ok", "configured": True}


async def llm(state) -> Component:
    """Seed 003's check: Ollama's `/api/tags` (an OpenAI-compatible server: `/v1/models`), and
    whether the configured model is among those it lists."""
    settings = state.settings
    if not settings.llm_url:
        return {"status": "ok", "configured": False, "proposals": "extractive"}
    base = settings.llm_url.rstrip("/")
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS, headers=headers) as client:
        response = await client.get(f"{base}/api/tags")
        if response.status_code == 404:
            response = await client.get(f"{base}/v1/models")
            names = [m.get("id") for m in response.json().get("data", [])]
        else:
            names = [m.get("name") for m in response.json().get("models", [])]
    if response.status_code != 200:
        return {"status": "down", "http_status": response.status_code}
    found = any(n == settings.llm_model or n.split(":")[0] == settings.llm_model for n in names)
    return {
        "status": "ok" if found else "degraded",
        "configured": True,
        "model": settings.llm_model,
        "model_available": found,
    }


async def outbox(state) -> Component:
    reading = state.metrics_state
    await reading.refresh()
    oldest = reading.outbox_oldest_seconds
    return {
        "status": "ok" if oldest <= OUTBOX_LATE_SECONDS else "degraded",
        "pending": reading.outbox_pending,
        "oldest_pending_seconds": round(oldest, 1),
    }


CHECKS: dict[str, Callable[[Any], Awaitable[Component]]] = {
    "database": database,
    "temporal": temporal,
    "workers": workers,
    "embedder": embedder,
    "redis": redis,
    "llm": llm,
    "outbox": outbox,
}


async def check(name: str, state) -> Component:
    started = time.perf_counter()
    try:
        found = await asyncio.wait_for(CHECKS[name](state), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # a health check reports failures, it does not raise them
        found = {"status": "down", "error": type(exc).__name__}
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {"name": name, "status": found.pop("status"), "latency_ms": latency_ms, **found}


async def check_all(state, names=tuple(CHECKS)) -> list[Component]:
    return list(await asyncio.gather(*(check(name, state) for name in names)))
