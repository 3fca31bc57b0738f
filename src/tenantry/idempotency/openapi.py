"""The `Idempotency-Key` header in the OpenAPI schema: on every authenticated POST, with the 409
and 422 it may answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A key of your choosing (1-255 printable ASCII characters, a UUID say). The same key with "
        "the same request within 24 hours returns the first answer (status, body, Location) with "
        "`Idempotent-Replayed: true`; an error answer is not kept (it changed nothing), so a "
        "retry after one runs again. With another request the key is a 422 "
        "(`idempotency-key-reused`); while the first is still running, a 409 "
        "(`idempotency-key-in-use`, with `Retry-After`). Keys belong to the tenant, or to the "
        "operator on admin routes."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
RESPONSES = {
    "409": "Conflict (also: a request with this Idempotency-Key is still being processed).",
    "422": "Invalid request (also: this Idempotency-Key was used with another request).",
}


def document(schema: dict[str, Any]) -> dict[str, Any]:
    for item in schema.get("paths", {}).values():
        operation = item.get("post")
        if operation is None or operation.get("x-permission") == "public":
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == PARAMETER["name"] for p in parameters):
            parameters.append(PARAMETER)
        responses = operation.setdefault("responses", {})
        for code, description in RESPONSES.items():
            responses[code] = {**responses.get(code, {}), "description": description}
    return schema


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi
