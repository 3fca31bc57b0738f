"""One error type for the whole platform, rendered once as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://tenantry.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class AppError(Exception):
    """An expected failure with an HTTP status and a stable problem `code`."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"
    type_uri: str | None = None  # a registered problem type, when one fits better than ours

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status or self.status
        self.code = code or self.code
        self.title = title or self.title
        self.errors = errors or []
        self.headers = headers or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri or PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "A valid credential is required.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class TenantSuspended(Forbidden):
    code, title = "tenant-suspended", "Tenant suspended"


class TenantRestoring(AppError):
    """The tenant's data is being swapped for a backup's: its writes wait a few seconds."""

    status, code, title = 503, "tenant-restoring", "Tenant restoring"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "5"})


class ValidationFailed(AppError):
    status, code, title = 422, "validation-error", "Invalid request"


class MalformedRequest(AppError):
    status, code, title = 400, "malformed-request", "Malformed request"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class ServiceUnavailable(AppError):
    status, code, title = 503, "service-unavailable", "Service unavailable"


class TransactionConflict(ServiceUnavailable):
    """A serialisation failure or deadlock that retrying did not resolve: nothing was saved."""

    code, title = "transaction-conflict", "Conflicting changes at the same time"

    def __init__(self) -> None:
        super().__init__(
            "The change collided with others made at the same time and was not saved; "
            "send it again.",
            headers={"Retry-After": "1"},
        )


class TenantContextMissing(RuntimeError):
    """Raised when code that needs a tenant runs without one: a programming error, never a 4xx."""


class TenantMoving(AppError):
    """A move holds the tenant's writes for a moment: retry after the header's seconds."""

    status, code, title = 503, "tenant-moving", "Tenant moving"

    def __init__(
        self, detail: str = "The tenant is moving to another cell; retry shortly."
    ) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})
