"""Who is calling: an operator of the platform, or a principal that belongs to exactly one tenant."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from tenantry.tenancy.context import TenantRef

SubjectKind = Literal["operator", "user", "api_key"]


@dataclass(frozen=True, slots=True)
class Subject:
    kind: SubjectKind
    id: uuid.UUID | None
    name: str
    tenant: TenantRef | None = None
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    session_id: uuid.UUID | None = None  # a user's login session (refresh-token family)
    # An API key's creator and that user's role now, read with the key: the role caps the key.
    creator_id: uuid.UUID | None = None
    creator_role: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def audit_name(self) -> str:
        return f"{self.kind}:{self.name}"


_subject: ContextVar[Subject | None] = ContextVar("tenantry_subject", default=None)
_request_id: ContextVar[str | None] = ContextVar("tenantry_request_id", default=None)


def current_subject() -> Subject | None:
    return _subject.get()


def set_subject(subject: Subject | None):
    return _subject.set(subject)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None):
    return _request_id.set(request_id)


def reset_subject(token) -> None:
    _subject.reset(token)


def reset_request_id(token) -> None:
    _request_id.reset(token)
