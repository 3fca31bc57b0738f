"""Telling "the database cannot be reached" from every other database error.

A request that fails because PostgreSQL is down, restarting, refusing connections or out of
pooled connections is answered 503 with Retry-After (the client may retry), never 500.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa

# Connection exceptions (class 08), shutdowns and "cannot connect now" (57P0x), too many
# connections (53300). A failed connect carries no SQLSTATE at all.
UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(error: BaseException) -> bool:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sa.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(current, sa.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, psycopg.OperationalError | psycopg.InterfaceError):
            state = current.sqlstate
            if state is None or state.startswith(UNAVAILABLE_STATES):
                return True
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False
