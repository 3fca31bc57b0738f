"""Keyset pagination: what every list endpoint answers, one page at a time.

A page is the rows after the previous page's last sort key, so a row inserted or removed between
two requests neither repeats nor hides another, and no page counts the whole list. The cursor is
that last key, encoded (base64url of JSON) with the name of its list; it is opaque to clients and
checked on the way back in: a cursor that is not one of this list's is a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tenantry.errors import ValidationFailed

INT8_MAX = 2**63 - 1
MAX_TEXT = 1000


class BadCursor(ValidationFailed):
    code, title = "invalid-cursor", "Invalid cursor"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The cursor is not valid for this list ({reason}); start again without one.",
            errors=[{"field": "query.cursor", "message": reason}],
        )


def _parse_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive time")
    return parsed


def _parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT8_MAX:
        raise ValueError("not an integer")
    return value


def _parse_text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_TEXT:
        raise ValueError("not a text key")
    return value


PARSERS: dict[type, Callable[[Any], Any]] = {
    datetime: _parse_datetime,
    date: date.fromisoformat,
    uuid.UUID: uuid.UUID,
    int: _parse_int,
    str: _parse_text,
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class Keyset:
    """A list's order: its name (cursors carry it) and sort columns, the last one unique."""

    name: str
    columns: tuple[InstrumentedAttribute, ...]
    descending: bool = False

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, key: Sequence[Any]) -> Any:
        row, last = tuple_(*self.columns), tuple_(*key)
        return row < last if self.descending else row > last

    def key_of(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, c.key) for c in self.columns)

    def encode(self, key: Sequence[Any]) -> str:
        return encode_cursor(self.name, key)

    def decode(self, cursor: str) -> tuple[Any, ...]:
        return decode_cursor(self.name, cursor, [c.type.python_type for c in self.columns])


def encode_cursor(name: str, key: Sequence[Any]) -> str:
    raw = json.dumps([name, [_plain(v) for v in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(name: str, cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """The key a cursor of list `name` carries, each value parsed as `types` says."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        list_name, values = json.loads(raw)
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        raise BadCursor("not a cursor this API issued") from None
    if list_name != name:
        raise BadCursor("it belongs to another list")
    if not isinstance(values, list) or len(values) != len(types):
        raise BadCursor("its key has the wrong shape")
    try:
        return tuple(PARSERS[t](v) for t, v in zip(types, values, strict=True))
    except (ValueError, TypeError, AttributeError):
        raise BadCursor("its key has the wrong types") from None


async def page(
    session: AsyncSession, query: Select, *, keyset: Keyset, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Up to `limit` rows after `cursor`, and the cursor of the next page (None on the last)."""
    if cursor:
        query = query.where(keyset.after(keyset.decode(cursor)))
    rows = list(await session.scalars(query.order_by(*keyset.order_by()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, keyset.encode(keyset.key_of(rows[-1]))


def page_of(
    items: Sequence[Any], *, name: str, key: Callable[[Any], str], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """The same paging over a short fixed list held in memory, in its given order."""
    keys = [key(i) for i in items]
    start = 0
    if cursor:
        (last,) = decode_cursor(name, cursor, [str])
        if last not in keys:
            raise BadCursor("its key is not in this list")
        start = keys.index(last) + 1
    chunk = list(items[start : start + limit])
    if start + limit >= len(items):
        return chunk, None
    return chunk, encode_cursor(name, [key(chunk[-1])])
