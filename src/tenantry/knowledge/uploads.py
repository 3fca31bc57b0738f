"""What a multipart upload must be before it is stored: its form fields held to the same types as a
JSON document's, and its content not empty, not blank and (for text) without NUL characters.

A PDF's text is only known once it is extracted, which is ingestion's work, off the API's loop.
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
    if b"\x00" in content:
        raise _invalid("body.file", "a text file must not contain NUL characters")
    stripped = content.strip()
    if len(stripped) < BLANK_CHECK_BYTES and not stripped.decode("utf-8", "replace").strip():
        raise _invalid("body.file", "the file holds no text, only white space")
