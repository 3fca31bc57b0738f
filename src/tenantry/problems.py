"""Render errors as RFC 9457 problem+json, for handlers and for middleware alike."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from tenantry.db.availability import database_unavailable
from tenantry.db.retry import is_retryable
from tenantry.errors import PROBLEM_CONTENT_TYPE, AppError, ServiceUnavailable, TransactionConflict

DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database-unavailable", "Database unavailable"


def problem_response(error: AppError, *, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        error.to_problem(instance),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def unexpected_error(error: BaseException) -> AppError:
    """What an error no handler expected becomes: 503 when the database is out of reach or a
    transaction conflict outlived its retries (a retry may succeed), otherwise 500. Its text never
    reaches the client."""
    if is_retryable(error):  # outside the retried router (authentication, say): busy, not broken
        return TransactionConflict()
    if database_unavailable(error):
        return DatabaseUnavailable(
            "The database cannot be reached right now; retry shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    return AppError(
        "An unexpected error occurred; it has been logged with the request id.",
        status=500,
        code="internal-error",
        title="Internal error",
    )


class FieldError(BaseModel):
    field: str = Field(description="Where: `body.…`, `query.…`, `path.…` or `header.…`.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered (`application/problem+json`)."""

    type: str = Field(description="A stable URI naming the kind of problem.")
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="For a 422: each invalid field and why."
    )
