"""Render errors as RFC 9457 problem+json, for handlers and for middleware alike."""

from __future__ import annotations

from starlette.responses import JSONResponse

from tenantry.errors import PROBLEM_CONTENT_TYPE, AppError


def problem_response(error: AppError, *, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        error.to_problem(instance),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )
