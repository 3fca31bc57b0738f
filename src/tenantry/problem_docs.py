"""The error answers every operation documents, in one place, as `application/problem+json`.

What a route can answer follows from who may call it and from its shape: any route may be refused
for its body's size (413), a tenant's rate (429) or the platform's state (503); a guarded one for
its credential (401) and permission (403); one with parameters or a body for their values (422), a
body also for its syntax (400); one with path parameters for what they name (404); a write
for a conflict with what exists (409). What only the route knows it names in `guard(…, 404)`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tenantry.errors import PROBLEM_CONTENT_TYPE
from tenantry.problems import Problem

REF = "#/components/schemas/"
WRITES = {"post", "put", "patch", "delete"}
DESCRIPTIONS = {
    400: "The body is not valid JSON.",
    401: "No valid credential.",
    403: "The credential may not do this, or its tenant is suspended.",
    404: "Nothing of that name in the caller's reach.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    415: "The upload's type is not supported.",
    422: "A parameter or body field is invalid; `errors` names each one.",
    429: "A limit is reached; see Retry-After.",
    503: "Temporarily unavailable; see Retry-After.",
    504: "An outside service (a directory, an identity provider) did not answer in time.",
}
# FastAPI's generic wording, replaced; a description a route or another documenter wrote is kept.
GENERIC = {"Validation Error"}


def statuses(method: str, operation: dict[str, Any]) -> set[int]:
    found = {413, 429, 503}
    if operation.get("x-permission") != "public":
        found |= {401, 403}
    parameters = operation.get("parameters", [])
    body = operation.get("requestBody", {}).get("content", {})
    if parameters or body:
        found.add(422)
    if body:
        found.add(400)
    if any(p.get("in") == "path" for p in parameters):
        found.add(404)
    if method in WRITES:
        found.add(409)
    return found | set(operation.pop("x-problems", []))


def with_problems(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=REF + "{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(method, operation)):
                if responses.get(str(status), {}).get("x-own-body"):
                    continue  # the route answers this status with a body of its own (health)
                given = responses.get(str(status), {}).get("description")
                responses[str(status)] = {
                    "description": given
                    if given and given not in GENERIC
                    else DESCRIPTIONS[status],
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF + "Problem"}}},
                }
    # FastAPI's own 422 model is replaced everywhere by the problem above.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install(app: FastAPI) -> None:
    """Serve the schema with every operation's problem answers, after what is installed already."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(generate())
        return app.openapi_schema

    app.openapi = openapi
