"""Pure-ASGI limits: shed under saturation, then the tenant's request rate and concurrency.

Runs inside the tenant middleware, so the subject is known. Health, metrics and operator requests
are never shed nor limited. Every tenant response carries the RateLimit headers.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.errors import AppError
from tenantry.observability.metrics import RATE_LIMITED, SHED
from tenantry.observability.tenant_labels import tenant_label
from tenantry.problems import problem_response
from tenantry.tenancy.subjects import current_subject
from tenantry.tenants.tiers import TIERS

IANA_PROBLEMS = "https://iana.org/assignments/http-problem-types#"
EXEMPT_PREFIXES = ("/health", "/metrics")


class QuotaExceeded(AppError):
    status, code, title = 429, "quota-exceeded", "Request quota exceeded"
    type_uri = IANA_PROBLEMS + "quota-exceeded"


class ReducedCapacity(AppError):
    status, code, title = 503, "temporary-reduced-capacity", "Temporarily reduced capacity"
    type_uri = IANA_PROBLEMS + "temporary-reduced-capacity"


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        subject = current_subject()
        if subject is not None and subject.is_operator:
            await self.app(scope, receive, send)
            return
        tenant = subject.tenant if subject else None
        tier = tenant.tier if tenant else "free"  # anonymous calls go first, with the free tier
        monitor = self.state.load
        if monitor.should_shed(TIERS[tier].shed_above):
            SHED.labels(tier).inc()
            error = ReducedCapacity(
                "The platform is saturated; retry shortly.", headers={"Retry-After": "2"}
            )
            await problem_response(error, instance=scope["path"])(scope, receive, send)
            return

        extra_headers: dict[str, str] = {}
        lease = None
        if tenant is not None:
            policy = await self.state.policies.get(tenant.id)
            decision = await self.state.rates.hit(
                policy="default",
                tenant_key=str(tenant.id),
                per_minute=policy.limits.requests_per_minute,
            )
            extra_headers = decision.headers()
            if not decision.allowed:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    tenant,
                    "requests_per_minute",
                    extra_headers,
                    f"The tenant's limit of {decision.quota} requests a minute is reached.",
                    retry_after=max(1, decision.reset_seconds),
                )
                return
            lease = await self.state.concurrency.acquire(
                str(tenant.id), policy.limits.concurrent_requests
            )
            if lease is None:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    tenant,
                    "concurrent_requests",
                    extra_headers,
                    f"The tenant already has {policy.limits.concurrent_requests} requests in flight.",
                    retry_after=1,
                )
                return
            self.state.meter.add(tenant.id, "requests")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra_headers:
                headers = MutableHeaders(scope=message)
                for name, value in extra_headers.items():
                    headers.setdefault(name, value)
            await send(message)

        monitor.started()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            monitor.finished()
            if lease is not None:
                await self.state.concurrency.release(str(tenant.id), lease)

    @staticmethod
    async def _refuse(
        scope, receive, send, tenant, limit, headers, detail, *, retry_after: int
    ) -> None:
        RATE_LIMITED.labels(tenant_label(tenant), tenant.tier, limit).inc()
        error = QuotaExceeded(detail, headers={**headers, "Retry-After": str(retry_after)})
        await problem_response(error, instance=scope["path"])(scope, receive, send)
