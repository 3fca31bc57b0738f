"""Resolve the credential of a request to a subject; the middleware calls this once per request."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Scope

from tenantry.db.session import Database
from tenantry.identity import operators
from tenantry.tenancy.subjects import Subject


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    """Reads the database from the app state, so it can be built before the app starts."""

    def __init__(self, state) -> None:
        self.state = state

    async def __call__(self, scope: Scope) -> Subject | None:
        token = bearer_token(Headers(scope=scope))
        if token is None:
            return None
        db: Database = self.state.db
        # Operator tokens usually carry their prefix, but one set by TENANTRY_BOOTSTRAP_TOKEN
        # may not: anything unrecognised is looked up as an operator token.
        async with db.control() as session:
            return await operators.authenticate(session, token=token)
