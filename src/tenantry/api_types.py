"""The constrained types of the API: every schema, path and query parameter is built from these, so
that anything the database could not store is refused as a 422 naming its field, before any write.

PostgreSQL refuses the NUL character in `text` and `jsonb`, `integer` stops at 2^31-1 and `bigint`
at 2^63-1, and `jsonb` has no NaN; a value past any of these used to reach the database and come
back as a 500. Body fields are strict (`false` is not the integer 0, `"1"` is not `true`); path and
query parameters arrive as text, so theirs are parsed from it but bounded the same way.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
)
from pydantic_core import CoreSchema

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
NO_NUL_PATTERN = r"^[^\x00]*$"
JSON_MAX_DEPTH = 8
JSON_MAX_BYTES = 64 * 1024


class _NoNulPattern:
    """Publishes the no-NUL rule in the schema, so clients (and fuzzers) know it."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        schema = handler(core_schema)
        schema.setdefault("pattern", NO_NUL_PATTERN)
        return schema


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def text(max_length: int, *, min_length: int = 0, strip: bool = False) -> Any:
    """A string PostgreSQL can store: no NUL, at most `max_length` characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length),
        AfterValidator(_no_nul),
        _NoNulPattern(),
    ]


def pattern_text(pattern: str, *, max_length: int, strip: bool = False) -> Any:
    """A string matching `pattern` (which must itself exclude NUL), bounded in length."""
    if "\x00" in pattern or re.fullmatch(pattern, "\x00") is not None:
        raise ValueError("the pattern must not admit NUL")
    return Annotated[
        str, StringConstraints(strip_whitespace=strip, pattern=pattern, max_length=max_length)
    ]


# Names, titles and labels people type; long free text; secrets; one-line references.
Name = text(200, min_length=1, strip=True)
Title = text(300, min_length=1, strip=True)
Label = text(200)
LongText = text(20_000, min_length=1, strip=True)
Password = text(256, min_length=1)
Secret = text(512, min_length=1)
SlugRef = text(64, min_length=1)
Tag = text(64, min_length=1, strip=True)

# Integers bounded to the column that stores them. Body ones are strict: JSON `false` is not 0.
Int4 = Annotated[StrictInt, Field(ge=-INT4_MAX - 1, le=INT4_MAX)]
Int8 = Annotated[StrictInt, Field(ge=-INT8_MAX - 1, le=INT8_MAX)]
Count = Annotated[StrictInt, Field(ge=0, le=INT8_MAX)]
Positive = Annotated[StrictInt, Field(ge=1, le=INT8_MAX)]
VersionNumber = Annotated[StrictInt, Field(ge=0, le=INT4_MAX)]
Flag = StrictBool
# Path and query parameters are text, parsed into the same bounds.
VersionParam = Annotated[int, Field(ge=0, le=INT4_MAX)]

# A time that means one instant: a naive one would be read in whatever zone the server has.
Instant = AwareDatetime


def _strict_http_url(value: str) -> str:
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as error:
        raise ValueError(f"is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ValueError("the host is not a valid name") from None
    if port == 0:
        raise ValueError("port 0 cannot be reached")
    return value


HttpUrlText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://[^\s\x00]+$"),
    AfterValidator(_strict_http_url),
]


class JsonValueError(ValueError):
    """A bad value inside a JSON document; `path` says where, for the 422's field name."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


def _storable_json(value: Any) -> Any:
    """A JSON value `jsonb` can store, and small: no NUL, finite numbers, bounded depth and size."""
    _walk(value, ())
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > JSON_MAX_BYTES:
        raise ValueError(f"must be at most {JSON_MAX_BYTES} bytes as JSON; this is {size}")
    return value


def _walk(value: Any, path: tuple[str | int, ...]) -> None:
    if len(path) >= JSON_MAX_DEPTH:
        raise JsonValueError(f"must be nested at most {JSON_MAX_DEPTH} levels deep", path)
    if isinstance(value, str) and "\x00" in value:
        raise JsonValueError("must not contain the NUL character (\\u0000)", path)
    if isinstance(value, float) and not math.isfinite(value):
        raise JsonValueError("must be a finite number", path)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**300:
        raise JsonValueError("must have at most 300 digits", path)
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                raise JsonValueError("keys must not contain the NUL character", path)
            _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, index))


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
