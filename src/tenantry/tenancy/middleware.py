"""Pure-ASGI middleware: request id, subject and tenant context, body limit, metrics, access log.

Pure ASGI (not BaseHTTPMiddleware) so that the context variables set here are the ones the
endpoint sees.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

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


class TenantContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate,
        max_body_bytes: int,
        precheck: Precheck | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        # Runs before authentication, and may refuse (a tenant already past its rate, say).
        self.precheck = precheck
        self.max_body_bytes = max_body_bytes

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

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        rid_token = set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        subject_token = tenant_token = None
        try:
            try:
                self._check_length(headers)
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
            await self.app(scope, self._limited(receive), send_with_request_id)
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

    def _check_length(self, headers: Headers) -> None:
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            raise PayloadTooLarge(f"The request body is larger than {self.max_body_bytes} bytes.")

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            return message

        return wrapped

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
