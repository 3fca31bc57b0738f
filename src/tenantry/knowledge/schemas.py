"""Knowledge payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from tenantry.api_types import JsonObject, Tag, Title, text


def _has_text(value: str) -> str:
    if value.isspace():
        raise ValueError("holds no text, only white space")
    return value


# Documents sent as JSON are bounded by the body limit; the text itself must be storable.
DocumentText = Annotated[text(50_000_000, min_length=1), AfterValidator(_has_text)]
Query = text(1000, min_length=1, strip=True)


class DocumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    text: DocumentText
    tags: Annotated[list[Tag], Field(max_length=32)] = []
    metadata: JsonObject = {}


class DocumentOut(BaseModel):
    id: uuid.UUID
    title: str
    source_type: str
    filename: str | None
    size_bytes: int
    tags: list[str]
    metadata: dict[str, Any]
    status: str
    error: str | None
    chunk_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d) -> DocumentOut:
        return cls(
            id=d.id,
            title=d.title,
            source_type=d.source_type,
            filename=d.filename,
            size_bytes=d.size_bytes,
            tags=d.tags,
            metadata=d.metadata_,
            status=d.status,
            error=d.error,
            chunk_count=d.chunk_count,
            created_by=d.created_by,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: Annotated[list[Tag], Field(max_length=16)] = []
    documents: Annotated[list[uuid.UUID], Field(max_length=100)] = []


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Query
    limit: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    filters: SearchFilters = SearchFilters()


class HitOut(BaseModel):
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    text: str
    score: float
    highlight: str

    @classmethod
    def of(cls, hit) -> HitOut:
        return cls(
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            title=hit.title,
            text=hit.text,
            score=hit.score,
            highlight=hit.highlight,
        )


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]
