"""The worker's probes over a real socket: ready only while it polls and reaches its services,
503 while it drains, live as long as its event loop runs."""

from __future__ import annotations

import httpx

from tenantry.runtime.worker_health import WorkerHealth
from tests.servers import free_port


async def _fine() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("temporal is gone")


async def test_readiness_follows_polling_checks_and_draining():
    checks = {"temporal": _fine, "database": _fine}
    health = WorkerHealth(checks)
    port = free_port()
    await health.start("127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/health/live")).status_code == 200
            starting = await http.get("/health/ready")
            assert starting.status_code == 503 and starting.json()["status"] == "starting"

            health.polling = True
            ready = await http.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ok",
                "checks": {"temporal": "ok", "database": "ok"},
            }

            checks["temporal"] = _down
            down = await http.get("/health/ready")
            assert down.status_code == 503
            assert down.json()["checks"]["temporal"] == "down (ConnectionRefusedError)"

            checks["temporal"] = _fine
            health.draining = True
            draining = await http.get("/health/ready")
            assert draining.status_code == 503 and draining.json()["status"] == "draining"
            assert (await http.get("/health/live")).status_code == 200
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200 and "tenantry_" in metrics.text
            assert (await http.get("/elsewhere")).status_code == 404
            assert (await http.post("/health/ready")).status_code == 405
    finally:
        await health.stop()
