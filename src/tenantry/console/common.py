"""What the console's page modules share: dependencies, lookups, and config as rows."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Form, Request

from tenantry.api_support import database, settings_of
from tenantry.config.layers import flatten
from tenantry.db.session import Database
from tenantry.errors import ValidationFailed
from tenantry.settings import Settings
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant

Db = Annotated[Database, Depends(database)]
Config = Annotated[Settings, Depends(settings_of)]
FormText = Annotated[str, Form(max_length=2000)]


async def tenant_by_slug(db: Database, slug: str) -> Tenant:
    """An operator's view of one tenant (404 as the API's when there is none)."""
    async with db.control() as session:
        return await tenants.get(session, slug=slug)


def config_rows(config: dict[str, Any], sources: dict[str, str]) -> list[tuple[str, Any, str]]:
    """The effective configuration as (dotted path, value, layer it comes from) rows."""
    return [
        (path, value, sources.get(path, "platform"))
        for path, value in sorted(flatten(config).items())
    ]


def merge_patch(path: str, raw: str) -> dict[str, Any]:
    """A JSON Merge Patch setting one dotted path: JSON when it parses, text otherwise; an
    empty value (or `null`) removes the tenant's own value so the layer below applies again."""
    path = path.strip()
    parts = [p for p in path.split(".") if p]
    if not parts or any(not p.replace("_", "").isalnum() for p in parts):
        raise ValidationFailed(
            "Name a setting by its dotted path, such as language or incidents.auto_approve.",
            errors=[{"field": "form.path", "message": "not a setting's path"}],
        )
    text = raw.strip()
    if text == "":
        value: Any = None
    else:
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    patch: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        patch = {part: patch}
    return patch


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
