"""Pure-ASGI middleware in front of the whole app, for `/console` paths only.

On the way in it turns the console's session cookie into the credential the API already accepts
(`Authorization: Bearer <the user's access token>`), renewing an expired access token with the
session's refresh token first, so that authentication, the tenant's limits and every permission
check downstream are the API's own. A console request carries no other credential: an API key or
bearer header sent to `/console` is dropped.

On the way out it writes the session and flash cookies the page asked for, sends a caller with no
session to the sign-in page, and renders a problem (`application/problem+json`, whoever raised it:
a service, a guard, the limits, a 404) as HTML: the whole page for a browser's request, the
problem box alone for htmx. Never a stack trace: the problem is what the API would have answered.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.console import session as sessions
from tenantry.console.render import FLASH_KEY, environment, flash_cookie
from tenantry.errors import AppError
from tenantry.identity import access_tokens
from tenantry.identity import sessions as identity_sessions
from tenantry.problems import unexpected_error

PREFIX = "/console"
LOGIN = "/console/login"
DROPPED_HEADERS = {b"authorization", b"x-api-key"}
STATIC = "/console/static/"
MAX_PROBLEM_BYTES = 64 * 1024
log = structlog.get_logger("tenantry.console")


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class ConsoleGateway:
    def __init__(self, app: ASGIApp, *, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_console(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = self.state.signing_key
        secure = scope.get("scheme") == "https"
        request = Request(scope)
        cookie = request.cookies.get(sessions.COOKIE)
        try:
            session, renewed = await self._session(cookie, key)
        except Exception as error:  # the database is away, say: a problem page, not a crash
            problem = error if isinstance(error, AppError) else unexpected_error(error)
            await self._problem_page(scope, receive, send, problem)
            return
        scope[sessions.SCOPE_KEY] = session
        if renewed or (cookie and session is None):
            scope[sessions.PENDING_KEY] = session or sessions.CLEAR
        scope["headers"] = self._credential_headers(scope, session)
        await self.app(scope, receive, self._responder(scope, send, key, secure))

    async def _session(
        self, cookie: str | None, key: str
    ) -> tuple[sessions.ConsoleSession | None, bool]:
        """The request's session, its access token renewed when it expired: (session, renewed)."""
        session = sessions.decode(cookie, key)
        if session is None or not session.signed_in:
            return session, False
        if not access_tokens.looks_like_jwt(session.access_token):
            return session, False  # an operator's session token: authentication reads it fresh
        if access_tokens.decode(key, session.access_token) is not None:
            return session, False
        if session.refresh_token is None:
            return None, False
        async with self.state.db.control() as db_session:
            outcome = await identity_sessions.refresh(
                db_session, token=session.refresh_token, settings=self.state.settings, key=key
            )
        if outcome.tokens is None:  # revoked, reused, user disabled, tenant suspended
            return None, False
        tokens = outcome.tokens
        return session.with_tokens(tokens.access_token, tokens.refresh_token), True

    @staticmethod
    def _credential_headers(scope: Scope, session: sessions.ConsoleSession | None) -> list:
        headers = [(k, v) for k, v in scope["headers"] if k not in DROPPED_HEADERS]
        if session is not None and session.signed_in:
            headers.append((b"authorization", f"Bearer {session.access_token}".encode()))
        return headers

    def _responder(self, scope: Scope, send: Send, key: str, secure: bool) -> Send:
        htmx = Headers(scope=scope).get("hx-request") == "true"
        buffered: dict = {"start": None, "body": b"", "problem": False}

        async def respond(message: Message) -> None:
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message["headers"]).get("content-type", "")
                is_problem = content_type.startswith("application/problem+json")
                if message["status"] == 401 and is_problem:
                    await self._to_sign_in(scope, send, key, secure, htmx)
                    buffered["problem"] = "dropped"
                    return
                self._write_cookies(scope, message, key, secure)
                if is_problem:
                    buffered["start"], buffered["problem"] = message, True
                    return
                await send(message)
                return
            if buffered["problem"] == "dropped":
                return
            if buffered["problem"]:
                buffered["body"] += message.get("body", b"")
                if message.get("more_body") and len(buffered["body"]) < MAX_PROBLEM_BYTES:
                    return
                await self._send_problem(scope, send, buffered, htmx)
                buffered["problem"] = "dropped"
                return
            await send(message)

        return respond

    @staticmethod
    def _write_cookies(scope: Scope, message: Message, key: str, secure: bool) -> None:
        headers = MutableHeaders(scope=message)
        pending = scope.get(sessions.PENDING_KEY)
        if pending is not None:
            session = None if pending is sessions.CLEAR else pending
            headers.append("set-cookie", sessions.cookie_header(session, key, secure=secure))
        if FLASH_KEY in scope:
            headers.append("set-cookie", flash_cookie(scope[FLASH_KEY], key, secure=secure))
        if not scope["path"].startswith(STATIC):  # pages show a tenant's data: never cached
            headers["cache-control"] = "no-store"

    async def _to_sign_in(self, scope: Scope, send: Send, key: str, secure: bool, htmx: bool):
        """No session (or one that ended): to the sign-in page, back here afterwards."""
        target = scope["path"] if scope["method"] == "GET" else PREFIX
        query = scope.get("query_string", b"").decode("latin-1")
        if query and scope["method"] == "GET":
            target += "?" + query
        location = f"{LOGIN}?next={quote(target, safe='')}"
        headers = [(b"cache-control", b"no-store")]
        if sessions.current(scope) is None and Request(scope).cookies.get(sessions.COOKIE):
            cookie = sessions.cookie_header(None, key, secure=secure)
            headers.append((b"set-cookie", cookie.encode()))
        if htmx:
            status, headers = 200, [*headers, (b"hx-redirect", location.encode())]
        else:
            status, headers = 303, [*headers, (b"location", location.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _send_problem(self, scope: Scope, send: Send, buffered: dict, htmx: bool) -> None:
        start = buffered["start"]
        try:
            problem = json.loads(buffered["body"] or b"{}")
        except ValueError:
            problem = {}
        problem.setdefault("status", start["status"])
        problem.setdefault("title", "Error")
        html = render_problem(scope, problem, htmx=htmx).encode()
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["content-type"] = "text/html; charset=utf-8"
        headers["content-length"] = str(len(html))
        if htmx:
            headers["hx-retarget"] = "#problem"
            headers["hx-reswap"] = "innerHTML"
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": html})

    async def _problem_page(self, scope: Scope, receive: Receive, send: Send, error: AppError):
        log.warning("console session could not be read", error=error.code)
        htmx = Headers(scope=scope).get("hx-request") == "true"
        html = render_problem(scope, error.to_problem(scope["path"]), htmx=htmx).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": html})


def render_problem(scope: Scope, problem: dict, *, htmx: bool) -> str:
    """The problem box (htmx) or a whole page around it; the context of a page, best effort."""
    from tenantry.console.render import base_context

    template = "problem_box.html" if htmx else "problem_page.html"
    context = base_context(Request(scope))
    return environment.get_template(template).render(**context, problem=problem)
