"""Renumbering a tenant's ids for a clone (the Zulip and Sentry way): every id of the tenant's own
objects gets a fresh UUID, and every reference to one (a foreign key, an id inside JSON or inside
a text such as `incident:<id>`) follows it. UUIDs are unique, so a value that is one of the
archive's ids is a reference to that object wherever it appears."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class IdMap:
    def __init__(self, source_tenant: str, target_tenant: str) -> None:
        self.ids: dict[str, str] = {source_tenant: target_tenant}

    def add(self, ids: Iterable[str]) -> None:
        for old in ids:
            self.ids.setdefault(old, str(uuid.uuid4()))

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            if len(value) == 36 and value in self.ids:
                return self.ids[value]
            if "-" in value:
                return UUID_TEXT.sub(lambda m: self.ids.get(m.group(0), m.group(0)), value)
            return value
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {key: self.value(item) for key, item in row.items()}
