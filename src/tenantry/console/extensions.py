"""Sections that depend on features other than the console's: shown only where they exist.

Each is looked up at the moment a page is drawn, so a feature merged later appears without a
change here once it provides its hook; until then its section is left out of the page.

- Temporal UI: `Settings.temporal_ui_url`, when it is set.
- More sections of a tenant's page (its moves, say): `app.state.console_tenant_sections`, a
  list of `async (request, tenant) -> Section | None`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import Request

from tenantry.tenants.namespaces import temporal_namespace
from tenantry.worker.devserver import tenant_workflows_url


@dataclass(frozen=True)
class Section:
    """A titled part of the operator's tenant page: rows of (label, value), maybe a link, and
    a URL that htmx polls for a fresh copy while something is in progress."""

    title: str
    rows: list[tuple[str, str]]
    link: tuple[str, str] | None = None
    poll_url: str | None = None


SectionLoader = Callable[[Request, object], Awaitable[Section | None]]


def temporal_ui_link(app: FastAPI, slug: str, *, own_namespace: bool = False) -> str | None:
    """The Temporal UI's workflow list filtered to the tenant (its `TenantId` attribute), in its
    own namespace if it has one, at `Settings.temporal_ui_url`; None where no UI is named, rather
    than a link that goes nowhere."""
    settings = app.state.settings
    if not settings.temporal_ui_url:
        return None
    chosen = temporal_namespace(slug, own=own_namespace, platform=settings.temporal_namespace)
    namespace = quote(chosen, safe="")
    return tenant_workflows_url(settings.temporal_ui_url.rstrip("/"), slug, namespace)


async def tenant_sections(request: Request, tenant) -> list[Section]:
    loaders: list[SectionLoader] = getattr(request.app.state, "console_tenant_sections", [])
    sections = []
    for load in loaders:
        section = await load(request, tenant)
        if section is not None:
            sections.append(section)
    return sections
