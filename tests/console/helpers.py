"""Signing in to the console the way a browser does: the form, its CSRF token, the cookie."""

from __future__ import annotations

import re
import uuid

from httpx import ASGITransport, AsyncClient

from tenantry.console.session import COOKIE
from tests.conftest import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def console_client(app, n: int = 0) -> AsyncClient:
    host = f"203.0.113.{n % 250 + 1}"
    transport = ASGITransport(app=app, client=(host, 41000 + n))
    return AsyncClient(transport=transport, base_url="http://test")


async def sign_in(client: AsyncClient, *, email: str, tenant: str = "") -> str:
    """Signs `client` in; returns the session's CSRF token, read from the next page."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    answer = await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(form.text),
            "tenant": tenant,
            "email": email,
            "password": PASSWORD,
            "next": "/console",
        },
    )
    assert answer.status_code == 303, answer.text
    assert COOKIE in client.cookies
    home = await client.get("/console", follow_redirects=True)
    assert home.status_code == 200, home.text
    return csrf_of(home.text)


async def make_operator(app, operator_headers: dict[str, str]) -> str:
    """A new operator account, created through the API by an operator (the bootstrap token is
    spent once the first operator exists); its email."""
    email = f"console-ops-{uuid.uuid4().hex[:8]}@tenantry.dev"
    async with console_client(app, 249) as c:
        created = await c.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Console ops", "password": PASSWORD},
            headers=operator_headers,
        )
    assert created.status_code == 201, created.text
    return email
