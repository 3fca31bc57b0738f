"""Route guards: each route declares what it needs; the subject was resolved by the middleware."""

from __future__ import annotations

from tenantry.errors import Forbidden, Unauthorized
from tenantry.tenancy.subjects import Subject, current_subject


def require_operator() -> Subject:
    subject = current_subject()
    if subject is None:
        raise Unauthorized()
    if not subject.is_operator:
        raise Forbidden("This route is for platform operators.")
    return subject
