"""Quotas: counts a tenant may not exceed (users, API keys, documents) and daily volumes."""

from __future__ import annotations

from tenantry.errors import AppError


class QuotaExhausted(AppError):
    status, code, title = 403, "quota-exhausted", "Quota exhausted"


class QuotaTooLarge(AppError):
    status, code, title = 413, "quota-too-large", "Over the quota"


def ensure_room(*, quota: str, used: int, limit: int, adding: int = 1, status: int = 403) -> None:
    if used + adding <= limit:
        return
    error = QuotaExhausted if status == 403 else QuotaTooLarge
    raise error(
        f"The '{quota}' quota is {limit}; {used} in use, {adding} more requested.",
        errors=[{"quota": quota, "limit": limit, "used": used, "requested": adding}],
    )
