"""Sections that depend on features other than the console's: shown only where they exist.

Each is looked up at the moment a page is drawn, so a feature merged later appears without a
change here once it provides its hook; until then its section is left out of the page.

- Temporal UI: `Settings.temporal_ui_url`, when the platform has that setting and it is set.
- OIDC sign-in: `app.state.console_oidc_start(slug) -> url | None`, a start URL whose callback
  hands its tokens to a console session.
- A tenant's backups and moves, and its health and SLO: `app.state.console_tenant_sections`, a
  list of `async (request, tenant) -> Section | None`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import Request


@dataclass(frozen=True)
class Section:
    """A titled part of the operator's tenant page: rows of (label, value), maybe a link, and
    a URL that htmx polls for a fresh copy while something is in progress."""

    title: str
    rows: list[tuple[str, str]]
    link: tuple[str, str] | None = None
    poll_url: str | None = None


SectionLoader = Callable[[Request, object], Awaitable[Section | None]]


def temporal_ui_link(app: FastAPI, slug: str) -> str | None:
    """The Temporal UI's workflow list filtered to the tenant, by its `TenantId` attribute."""
    settings = app.state.settings
    base = getattr(settings, "temporal_ui_url", None)
    if not base:
        return None
    query = quote(f'TenantId="{slug}"', safe="")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{str(base).rstrip('/')}/namespaces/{namespace}/workflows?query={query}"


def oidc_start_url(app: FastAPI, slug: str) -> str | None:
    start = getattr(app.state, "console_oidc_start", None)
    return start(slug) if callable(start) else None


async def tenant_sections(request: Request, tenant) -> list[Section]:
    loaders: list[SectionLoader] = getattr(request.app.state, "console_tenant_sections", [])
    sections = []
    for load in loaders:
        section = await load(request, tenant)
        if section is not None:
            sections.append(section)
    return sections
