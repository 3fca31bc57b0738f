"""The namespace a tenant is provisioned into: cell, task queue, cache prefix and log label."""

from __future__ import annotations

from tenantry.settings import Settings


def dedicated_task_queue(slug: str) -> str:
    return f"tenant-{slug}-jobs"


def tenant_namespace(slug: str) -> str:
    """The tenant's own Temporal namespace, where an operator gives it one."""
    return f"tenant-{slug}"


def temporal_namespace(slug: str, *, own: bool, platform: str) -> str:
    """Where the tenant's new workflows go: its own namespace, or the platform's."""
    return tenant_namespace(slug) if own else platform


def has_own_namespace(config: dict) -> bool:
    """Whether the tenant's new workflows go to its own namespace: asked for, and served by
    its dedicated workers (the pool's workers poll the platform's namespace only)."""
    features = config["features"]
    return bool(features.get("own_namespace") and features["dedicated_workers"])


def namespace_for(slug: str, settings: Settings) -> dict[str, str]:
    # Pool tenants share the platform's task queue (dispatched fairly per tenant); a tenant moved
    # to dedicated workers gets `dedicated_task_queue(slug)`.
    return {
        "cell": settings.cell,
        "task_queue": settings.pool_task_queue,
        "cache_prefix": f"{settings.cache_prefix}:{slug}:",
        "log_label": f"tenant={slug}",
    }
