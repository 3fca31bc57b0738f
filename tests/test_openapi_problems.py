"""The OpenAPI schema documents every error status each operation answers, as problem+json."""

from __future__ import annotations

import json

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def test_every_operation_documents_its_problem_answers(app):
    schema = app.openapi()
    assert set(schema["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    assert "HTTPValidationError" not in json.dumps(schema)
    missing = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            wanted = {"413", "429", "503"}
            if operation["x-permission"] != "public":
                wanted |= {"401", "403"}
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.add("422")
            if "{" in path:
                wanted.add("404")
            if method in ("post", "put", "patch", "delete"):
                wanted.add("409")
            responses = operation["responses"]
            for status in sorted(wanted):
                if responses.get(status, {}).get("x-own-body") and responses[status]["content"]:
                    continue  # a health route's 503 is its state, in its own JSON body
                content = responses.get(status, {}).get("content", {})
                if content.get("application/problem+json", {}).get("schema") != PROBLEM:
                    missing.append(f"{method.upper()} {path}: {status}")
            assert "x-problems" not in operation
    assert not missing, missing


def test_route_specific_problems_are_documented(app):
    paths = app.openapi()["paths"]
    assert "415" in paths["/v1/documents/upload"]["post"]["responses"]
    assert "404" in paths["/v1/sso/ldap"]["get"]["responses"]
    assert {"401", "403"} <= set(paths["/v1/auth/login"]["post"]["responses"])
    assert "401" not in paths["/health/live"]["get"]["responses"]
    # A document sent twice answers 200 with the first one: documented beside the 202.
    assert {"200", "202"} <= set(paths["/v1/documents"]["post"]["responses"])
    # The Idempotency-Key answers keep their own wording, and the header counts as a parameter.
    suspend = paths["/v1/admin/tenants/{slug}/suspend"]["post"]["responses"]
    assert "Idempotency-Key" in suspend["409"]["description"]
    assert "Idempotency-Key" in suspend["422"]["description"]


async def test_a_validation_problem_has_the_documented_shape(client):
    response = await client.post("/v1/auth/login", json={"tenant": "x", "password": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) <= {"type", "title", "status", "detail", "instance", "errors"}
    assert {e["field"] for e in body["errors"]} == {"body.email", "body.password"}
