"""Tenant isolation checked inside the load: every id in every answer belongs to the caller.

Ids are UUIDs, unique across the platform, so one that two tenants both see is a leak: each
tenant's ids (from its own creations, lists and searches) are recorded, and an id already recorded
for another tenant is a foreign id. Kept free of Locust, so tests can use it without gevent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class IsolationLedger:
    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.foreign: list[dict[str, str]] = []

    def claim(self, tenant: str, ids: Iterable[Any], *, where: str) -> int:
        """Record `ids` as seen by `tenant`; returns how many were another tenant's."""
        found = 0
        for value in ids:
            if value is None:
                continue
            key = str(value)
            owner = self.owner.setdefault(key, tenant)
            if owner != tenant:
                found += 1
                self.foreign.append({"id": key, "seen_by": tenant, "owner": owner, "in": where})
        return found


def items_of(body: Any) -> list[dict[str, Any]]:
    """A list answer's rows, whether paged (`{"items": [...]}`) or a bare array."""
    if isinstance(body, dict):
        return list(body.get("items") or [])
    return list(body) if isinstance(body, list) else []


def ids_in(body: Any, *fields: str) -> list[Any]:
    """`fields` of every row of a list answer."""
    return [row.get(field) for row in items_of(body) for field in fields]
