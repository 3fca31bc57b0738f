"""The one page shape every list answers, and the `cursor` and `limit` every list accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from tenantry.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass it as `cursor` to get the next page; null on the last page."
    )
    limit: int


@dataclass(frozen=True)
class PageQuery:
    cursor: str | None
    limit: int


async def page_query(
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=2048,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="The `next_cursor` of the previous page; none for the first page.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> PageQuery:
    if offset is not None:
        # Lists were paged by offset once: say so, rather than answer the first page again.
        raise ValidationFailed(
            "Lists are paged by cursor: pass the previous page's next_cursor as `cursor`.",
            errors=[{"field": "query.offset", "message": "not supported; use cursor"}],
        )
    return PageQuery(cursor=cursor, limit=limit)


PageParams = Annotated[PageQuery, Depends(page_query)]
