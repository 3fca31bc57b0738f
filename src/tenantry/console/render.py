"""Rendering: the templates, what every page is given, and the answer to a finished action.

A form works with and without JavaScript: without it, the browser posts the form and follows a
303 to the page that shows the result (post, redirect, get); with htmx, the same post answers
`HX-Redirect`, and an error lands in the page's problem box while the form keeps what was typed.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tenantry.console import session as sessions
from tenantry.console.navigation import navigation
from tenantry.identity.permissions import Permission, permissions_of
from tenantry.tenancy.subjects import Subject, current_subject

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "tenantry_console_flash"
FLASH_KEY = "tenantry.console_flash"
FLASH_SECONDS = 60

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.isoformat()


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


environment.filters["when"] = _when
environment.filters["pretty"] = _pretty
environment.filters["number"] = _number
environment.globals["urlencode"] = urlencode


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def can(subject: Subject | None, permission: str) -> bool:
    """What the page offers; the route's guard decides what is done."""
    if subject is None:
        return False
    if permission == "operator":
        return subject.is_operator and subject.role != "bootstrap"
    if subject.is_operator:
        return False
    return Permission(permission) in permissions_of(role=subject.role, scopes=subject.scopes)


def base_context(request: Request) -> dict[str, Any]:
    subject = current_subject()
    session = sessions.current(request)
    return {
        "request": request,
        "subject": subject,
        "csrf_token": session.csrf if session else "",
        "can": lambda permission: can(subject, permission),
        "nav": navigation(subject, request.url.path),
        "flash": take_flash(request),
        "path": request.url.path,
    }


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = environment.get_template(template).render(**base_context(request), **context)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    """Part of a page, for htmx to swap in (a status that polls, a search's results)."""
    return page(request, template, **context)


def done(request: Request, url: str, message: str | None = None) -> Response:
    """The answer to an action that worked: on to the page that shows its result."""
    if message:
        set_flash(request, message)
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def set_flash(request: Request, message: str) -> None:
    request.scope[FLASH_KEY] = message


def take_flash(request: Request) -> str | None:
    """The message the previous action left, once (the gateway clears its cookie)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    request.scope.setdefault(FLASH_KEY, None)
    try:
        claims = jwt.decode(raw, request.app.state.signing_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims.get("flash")


def flash_cookie(message: str | None, key: str, *, secure: bool) -> str:
    """`Set-Cookie` for a message shown on the next page, or its removal."""
    attributes = [f"Path={sessions.PATH}", "HttpOnly", "SameSite=Lax"]
    if secure:
        attributes.append("Secure")
    if message is None:
        return "; ".join([f"{FLASH_COOKIE}=", "Max-Age=0", *attributes])
    value = jwt.encode(
        {"flash": message[:500], "exp": int(time.time()) + FLASH_SECONDS}, key, algorithm="HS256"
    )
    return "; ".join([f"{FLASH_COOKIE}={value}", f"Max-Age={FLASH_SECONDS}", *attributes])
