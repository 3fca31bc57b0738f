"""The namespace a tenant is provisioned into: cell, task queue, cache prefix and log label."""

from __future__ import annotations

from tenantry.settings import Settings


def dedicated_task_queue(slug: str) -> str:
    return f"tenant-{slug}-jobs"


def namespace_for(slug: str, settings: Settings) -> dict[str, str]:
    # Pool tenants share the platform's task queue (dispatched fairly per tenant); a tenant moved
    # to dedicated workers gets `dedicated_task_queue(slug)`.
    return {
        "cell": settings.cell,
        "task_queue": settings.pool_task_queue,
        "cache_prefix": f"{settings.cache_prefix}:{slug}:",
        "log_label": f"tenant={slug}",
    }
