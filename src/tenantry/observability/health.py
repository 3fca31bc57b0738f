"""Liveness, readiness (database reachable, migrations at head, a worker polling the shared task
queue lately) and a detailed component view."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from tenantry.db.migrate import head_revision
from tenantry.observability import components
from tenantry.observability.state import running_version

router = APIRouter(prefix="/health", tags=["health"])
# Published like every route's guard, so the cross-tenant test matrix knows these are open.
PUBLIC = {"openapi_extra": {"x-permission": "public"}}
# A 503 here reports the platform's state in the same JSON body as the 200, not a problem.
STATE_503 = {
    503: {
        "description": "Not ready, draining, or a component is not ok; the body says which.",
        "content": {"application/json": {"schema": {"type": "object"}}},
        "x-own-body": True,  # kept as it is by tenantry.problem_docs
    }
}


async def check_database(request: Request) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with request.app.state.db.control() as session:
            current = await session.scalar(text("SELECT version_num FROM alembic_version"))
        head = head_revision()
        status = "ok" if current == head else "degraded"
        detail: dict[str, Any] = {"migration": current, "head": head}
    except Exception as exc:  # a health check reports failures, it does not raise them
        status, detail = "down", {"error": type(exc).__name__}
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {"name": "database", "status": status, "latency_ms": latency_ms, **detail}


async def check_temporal(request: Request) -> dict[str, Any]:
    client = getattr(request.app.state, "temporal", None)
    if client is None:
        return {"name": "temporal", "status": "ok", "latency_ms": 0.0, "configured": False}
    started = time.perf_counter()
    try:
        await client.service_client.check_health()
        status = "ok"
    except Exception as exc:  # reported, not raised
        status = f"down ({type(exc).__name__})"
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return {
        "name": "temporal",
        "status": status if status == "ok" else "down",
        "latency_ms": latency_ms,
        # The API takes work while Temporal is away (the outbox keeps it): not a reason to
        # take a replica out of service, only to say so in /health/detailed.
        "needed_for_ready": False,
    }


async def check_workers(request: Request) -> dict[str, Any]:
    """A worker polled the shared task queue lately (see `readiness`); installed only when
    `ready_worker_stale_seconds` is set and Temporal configured."""
    return await request.app.state.worker_readiness.check(request.app.state)


@router.get("/live", **PUBLIC)
async def live() -> dict[str, str]:
    return {"status": "ok"}


def serving(request: Request) -> dict[str, Any]:
    """How this process serves: its event loop (uvloop under `tenantry run`) and HTTP parser."""
    state = request.app.state
    return {
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "http": getattr(state, "http_parser", "unknown"),
        "draining": getattr(state, "draining", False),
    }


@router.get("/ready", responses=STATE_503, **PUBLIC)
async def ready(request: Request) -> JSONResponse:
    if getattr(request.app.state, "draining", False):  # stopping: send new requests elsewhere
        return JSONResponse({"status": "draining", "checks": []}, status_code=503)
    checks = [await check(request) for check in request.app.state.health_checks]
    ok = all(c["status"] == "ok" for c in checks if c.get("needed_for_ready", True))
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/detailed", responses=STATE_503, **PUBLIC)
async def detailed(request: Request) -> JSONResponse:
    """Every component with status, latency and what it saw (see `components`); 503 when one is
    not ok. Readiness follows the database and the workers only: see `readiness` for why."""
    found = await components.check_all(request.app.state)
    ok = all(c["status"] == "ok" for c in found)
    return JSONResponse(
        {
            "status": "ok" if ok else "degraded",
            "version": running_version(),
            "components": found,
            "server": serving(request),
        },
        status_code=200 if ok else 503,
    )
