"""Authorization in one place: each route names the permission it needs, and this checks it.

The subject (and its tenant, refused when suspended or the user disabled) was resolved by the
middleware; `guard(...)` both enforces the permission and publishes it in the OpenAPI schema as
`x-permission`, which the cross-tenant test matrix reads.

Every dependency here is `async def`: FastAPI runs a plain `def` one in its thread pool, a hop
that cost more than the check itself on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tenantry.errors import Forbidden
from tenantry.identity.credentials import unauthorized
from tenantry.identity.permissions import Permission, granted_to
from tenantry.tenancy.subjects import Subject, current_subject

PUBLIC = "public"
OPERATOR = "operator"
BOOTSTRAP = "operator:bootstrap"


def _authenticated(request: Request) -> Subject:
    subject = current_subject()
    if subject is None:
        raise unauthorized(request.scope)
    return subject


def require_tenant_permission(permission: Permission):
    async def check(request: Request) -> Subject:
        subject = _authenticated(request)
        if subject.is_operator or subject.tenant is None:
            raise Forbidden("Operators reach a tenant's data only through /v1/admin routes.")
        if permission not in granted_to(subject):
            raise Forbidden(f"This needs the '{permission}' permission.")
        return subject

    return check


def require_operator(*, allow_bootstrap: bool = False):
    async def check(request: Request) -> Subject:
        subject = _authenticated(request)
        if not subject.is_operator:
            raise Forbidden("This route is for platform operators.")
        if subject.role == "bootstrap" and not allow_bootstrap:
            raise Forbidden("The bootstrap token can only create operators; log in as one.")
        return subject

    return check


def guard(permission: Permission | str, *problems: int) -> dict[str, Any]:
    """Route keyword arguments: the dependency that enforces `permission` and its OpenAPI note.

    The error statuses the route answers are derived from the permission and the route's shape
    (see tenantry.problem_docs); `problems` adds those only the route itself knows of.
    """
    if permission == PUBLIC:
        dependency = None
    elif permission == OPERATOR:
        dependency = require_operator()
    elif permission == BOOTSTRAP:
        dependency = require_operator(allow_bootstrap=True)
    else:
        dependency = require_tenant_permission(Permission(permission))
    extra: dict[str, Any] = {"x-permission": str(permission)}
    if problems:
        extra["x-problems"] = sorted(problems)
    return {"dependencies": [Depends(dependency)] if dependency else [], "openapi_extra": extra}


async def caller(request: Request) -> Subject:
    """The authenticated subject, for handlers whose guard already checked it."""
    return _authenticated(request)


Caller = Annotated[Subject, Depends(caller)]
