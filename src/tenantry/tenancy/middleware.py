"""Pure-ASGI middleware: request id, subject and tenant context, body limits, metrics, access log.

Pure ASGI (not BaseHTTPMiddleware) so that the context variables set here are the ones the
endpoint sees.

Body limits are per path (uploads may be larger than JSON bodies): a declared Content-Length past
the limit is refused before anything else; a body without one (chunked) is counted as it is read,
and once past the limit the application's own answer is dropped for the same 413.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.errors import AppError, PayloadTooLarge
from tenantry.observability.metrics import (
    HTTP_LATENCY,
    HTTP_REQUESTS,
    TENANT_REQUESTS,
    TENANT_SLOW_REQUESTS,
)
from tenantry.observability.objectives import OBJECTIVES
from tenantry.observability.slo import SLO_METER
from tenantry.observability.tenant_labels import tenant_label
from tenantry.problems import problem_response, unexpected_error
from tenantry.tenancy.context import reset_current_tenant, set_current_tenant
from tenantry.tenancy.subjects import (
    Subject,
    reset_request_id,
    reset_subject,
    set_request_id,
    set_subject,
)

Authenticate = Callable[[Scope], Awaitable[Subject | None]]
Precheck = Callable[[Scope], Awaitable[None]]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
log = structlog.get_logger("tenantry.access")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than {limit} bytes.")


class _CountedBody:
    """The request's body as the application reads it, stopped once past the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _too_large(self.limit)
        return message


class TenantContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        max_body_bytes: int,
        body_limits: Mapping[str, int] | None = None,
        precheck: Precheck | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        # Runs before authentication, and may refuse (a tenant already past its rate, say).
        self.precheck = precheck
        self.max_body_bytes = max_body_bytes
        # Paths whose bodies may be larger (or must be smaller) than the default.
        self.body_limits = dict(body_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status: dict = {"code": 500, "started": False}
        subject: Subject | None = None
        limit = self.body_limits.get(scope["path"], self.max_body_bytes)
        body = _CountedBody(receive, limit)

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        async def send_unless_too_large(message: Message) -> None:
            # Whatever the application made of a body cut short, the answer is the 413.
            if not body.exceeded:
                await send_with_request_id(message)

        rid_token = set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        subject_token = tenant_token = None
        try:
            try:
                self._check_length(headers, limit)
                if self.precheck is not None:
                    await self.precheck(scope)
                subject = await self.authenticate(scope)
            except AppError as error:
                await problem_response(error, instance=scope["path"])(
                    scope, receive, send_with_request_id
                )
                return
            subject_token = set_subject(subject)
            tenant_token = set_current_tenant(subject.tenant if subject else None)
            if subject and subject.tenant:
                structlog.contextvars.bind_contextvars(tenant=subject.tenant.slug)
            try:
                await self.app(scope, body.receive, send_unless_too_large)
            except Exception:
                if not body.exceeded:
                    raise
            if body.exceeded and not status["started"]:
                await problem_response(_too_large(limit), instance=scope["path"])(
                    scope, receive, send_with_request_id
                )
        except Exception as exc:
            # Answered here, inside the request id's context, so that the 5xx and its log line
            # carry the id (the app-level handler runs outside this middleware).
            if status["started"]:  # too late to answer anything else
                raise
            error = exc if isinstance(exc, AppError) else unexpected_error(exc)
            if error.status == 500:
                log.exception("unhandled error", error=type(exc).__name__)
            else:
                log.warning("dependency unavailable", error=type(exc).__name__, status=error.status)
            await problem_response(error, instance=scope["path"])(
                scope, receive, send_with_request_id
            )
        finally:
            self._observe(scope, subject, status["code"], time.perf_counter() - started)
            if tenant_token is not None:
                reset_current_tenant(tenant_token)
            if subject_token is not None:
                reset_subject(subject_token)
            reset_request_id(rid_token)
            structlog.contextvars.unbind_contextvars("request_id", "tenant")

    @staticmethod
    def _check_length(headers: Headers, limit: int) -> None:
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise _too_large(limit)

    @staticmethod
    def _observe(scope: Scope, subject: Subject | None, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        if subject is None:
            tier = "anonymous"
        elif subject.tenant is not None:
            tier = subject.tenant.tier
        else:
            tier = "operator"
        labels = (template, scope["method"], str(status), tier)
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_LATENCY.labels(*labels).observe(elapsed)
        if subject is not None and subject.tenant is not None:
            SLO_METER.record(subject.tenant.id, status=status, seconds=elapsed)
            who = tenant_label(subject.tenant)
            TENANT_REQUESTS.labels(who, tier, status_class(status)).inc()
            if status < 500 and elapsed > OBJECTIVES[tier].latency_seconds:
                TENANT_SLOW_REQUESTS.labels(who, tier).inc()
        log.info(
            "request",
            method=scope["method"],
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            subject=subject.audit_name if subject else None,
        )


def status_class(status: int) -> str:
    """429 apart from the other 4xx: a refusal by a limit is not the caller's mistake."""
    return "429" if status == 429 else f"{status // 100}xx"
