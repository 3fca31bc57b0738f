"""What a multipart upload must be before it is stored: its form fields held to the same types as a
JSON document's, and its content neither empty nor, for text, blank.

Everything else about the content is ingestion's to judge, off the API's loop: a PDF's text is only
known once extracted, and a text file's stray NUL characters are dropped there (one made mostly of
them fails there as binary data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from tenantry.api_types import JsonObject, Tag, Title, text
from tenantry.errors import ValidationFailed

TEXT_KINDS = ("txt", "md", "html")
# Past this many non-blank ASCII bytes a file holds text; below it, decode and look properly.
BLANK_CHECK_BYTES = 4096
# What a text file may hold and still have no text: ASCII white space and NUL characters.
BLANK = b" \t\r\n\x0b\x0c\x00"

_title = TypeAdapter(Title)
_tags = TypeAdapter(Annotated[list[Tag], Field(max_length=32)])
_metadata = TypeAdapter(JsonObject)
_filename = TypeAdapter(text(1000))


@dataclass(frozen=True)
class UploadFields:
    title: str
    tags: list[str]
    metadata: dict[str, Any]
    filename: str | None


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid value for {field}: {message}.", errors=[{"field": field, "message": message}]
    )


def _check(adapter: TypeAdapter, value: Any, field: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        raise _invalid(field, "; ".join(e["msg"] for e in error.errors())) from None


def parse_fields(
    *, title: str | None, tags: str, metadata: str, filename: str | None
) -> UploadFields:
    if filename is not None:
        _check(_filename, filename, "body.file")
    try:
        meta = json.loads(metadata)
    except ValueError:
        raise _invalid("body.metadata", "not a JSON object") from None
    if not isinstance(meta, dict):
        raise _invalid("body.metadata", "not a JSON object")
    return UploadFields(
        title=_check(_title, title or _title_from(filename), "body.title"),
        tags=_check(_tags, [t.strip() for t in tags.split(",") if t.strip()], "body.tags"),
        metadata=_check(_metadata, meta, "body.metadata"),
        filename=filename,
    )


def _title_from(filename: str | None) -> str:
    return (filename or "").strip()[:300] or "untitled"


def check_content(content: bytes, kind: str) -> None:
    """Refuse, before anything is stored, a file that can never become a document."""
    if not content:
        raise _invalid("body.file", "the file is empty")
    if kind not in TEXT_KINDS:
        return
    stripped = content.strip(BLANK)
    if len(stripped) < BLANK_CHECK_BYTES and not _has_text(stripped):
        raise _invalid("body.file", "the file holds no text, only white space")


def _has_text(head: bytes) -> bool:
    return bool(head.decode("utf-8", "replace").replace("\x00", "").strip())
