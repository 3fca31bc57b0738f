"""Pure-ASGI `Idempotency-Key` handling for every POST.

A middleware rather than a dependency: it covers every POST route, present and future, in one
place; it sees the request's exact bytes (to tell "the same request" from "another body") and the
final answer's status, headers and body (to replay them), which a dependency never sees; and pure
ASGI keeps the context variables (subject, tenant) of the middleware above it.

It runs after authentication and the limits (a refused request is not remembered), and only for
authenticated callers: a login or refresh answers with fresh secrets and is harmless to repeat.
Keys belong to the tenant (shared by its users and keys) or, on admin routes, to the operator.
"""

from __future__ import annotations

import hashlib
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.errors import AppError, Conflict, ValidationFailed
from tenantry.idempotency.store import IdempotencyStore, Owner, Stored
from tenantry.problems import problem_response
from tenantry.tenancy.subjects import current_subject

HEADER = "idempotency-key"
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("content-type", "location")


class KeyInUse(Conflict):
    code, title = "idempotency-key-in-use", "Idempotency key in use"


class KeyReused(ValidationFailed):
    code, title = "idempotency-key-reused", "Idempotency key reused"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, state) -> None:
        self.app = app
        self.state = state
        self._store: IdempotencyStore | None = None

    @property
    def store(self) -> IdempotencyStore:
        if self._store is None:  # the database exists once the app's lifespan started
            self._store = IdempotencyStore(self.state.db, self.state.kek)
        return self._store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = Headers(scope=scope).get(HEADER) if scope["type"] == "http" else None
        subject = current_subject()
        if key is None or scope["method"] != "POST" or subject is None:
            await self.app(scope, receive, send)
            return
        if not VALID_KEY.match(key):
            error = ValidationFailed(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
                errors=[{"field": "header.Idempotency-Key", "message": "1-255 printable ASCII"}],
            )
            await problem_response(error, instance=scope["path"])(scope, receive, send)
            return
        owner = (
            Owner(tenant_id=subject.tenant.id)
            if subject.tenant is not None
            else Owner(operator=subject.audit_name)
        )
        try:
            body = await _read_body(receive)
        except AppError as error:  # a body over the limit, read here before any route is
            await problem_response(error, instance=scope["path"])(scope, receive, send)
            return
        fingerprint = _fingerprint(scope, body)
        claim = await self.store.claim(owner, key, fingerprint)
        if claim.outcome == "replay":
            await _replay(claim.stored, send)
            return
        if claim.outcome != "new":
            error = (
                KeyReused(
                    "This Idempotency-Key was used with another request; use a new key.",
                    errors=[
                        {"field": "header.Idempotency-Key", "message": "used for another request"}
                    ],
                )
                if claim.outcome == "mismatch"
                else KeyInUse(
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    headers={"Retry-After": "1"},
                )
            )
            await problem_response(error, instance=scope["path"])(scope, receive, send)
            return
        await self._first(scope, body, send, owner, key, fingerprint)

    async def _first(self, scope, body: bytes, send: Send, owner, key, fingerprint) -> None:
        answer: dict = {"status": 500, "headers": [], "body": []}

        async def remembering(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in KEPT_HEADERS
                ]
            elif message["type"] == "http.response.body":
                answer["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replaying(body), remembering)
        except BaseException:
            await self.store.forget(owner, key, fingerprint)
            raise
        if answer["status"] >= 400:
            # An error changed nothing (one transaction, rolled back): the key is free again, so
            # a retry after a 429 or 503, or with a corrected body, runs for real.
            await self.store.forget(owner, key, fingerprint)
            return
        stored = Stored(answer["status"], answer["headers"], b"".join(answer["body"]))
        await self.store.complete(owner, key, fingerprint, stored)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _fingerprint(scope: Scope, body: bytes) -> str:
    """The request as far as its meaning goes: a multipart boundary (random per try) is not."""
    content_type = Headers(scope=scope).get("content-type", "")
    media, _, params = content_type.partition(";")
    boundary = re.search(r'boundary="?([^";]+)"?', params)
    if boundary:
        body = body.replace(boundary.group(1).encode("latin-1"), b"BOUNDARY")
    digest = hashlib.sha256()
    for part in (
        scope["method"],
        scope["path"],
        scope.get("query_string", b"").decode(),
        media.strip(),
    ):
        digest.update(part.encode() + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _replay(stored: Stored, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((REPLAYED.lower().encode(), b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
