"""Identity payloads. Tokens come back as OAuth 2 clients expect them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

Role = Literal["owner", "admin", "member", "viewer"]
Scope = Literal["read", "write", "admin", "external"]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SlugRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    tenant: SlugRef
    email: EmailStr
    password: Password


class LdapLoginIn(Strict):
    tenant: SlugRef
    username: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password: Password


class RefreshIn(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str | None = None


class UserCreate(Strict):
    email: EmailStr
    password: Password
    role: Role = "member"
    display_name: Name | None = None


class UserUpdate(Strict):
    role: Role | None = None
    status: Literal["active", "disabled"] | None = None
    display_name: Name | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UserUpdate:
        if self.role is None and self.status is None and self.display_name is None:
            raise ValueError("role, status or display_name is required")
        return self


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    status: str
    auth_source: str
    created_at: datetime
    last_login_at: datetime | None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class ApiKeyCreate(Strict):
    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1)]
    expires_at: datetime | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret, shown only in this response.")


class MeOut(BaseModel):
    kind: str
    id: uuid.UUID | None
    name: str
    tenant: str
    tier: str
    role: str | None
    scopes: list[str]
    permissions: list[str]


class OperatorCreate(Strict):
    email: EmailStr
    name: Name
    password: Password


class OperatorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    status: str
    created_at: datetime


class OperatorLoginIn(Strict):
    email: EmailStr
    password: Password


class LdapConfigIn(Strict):
    server_url: Annotated[str, StringConstraints(pattern=r"^ldaps?://[^\s/]+(:\d+)?/?$")]
    base_dn: Annotated[str, StringConstraints(min_length=3, max_length=500)]
    bind_template: Annotated[
        str, StringConstraints(pattern=r".*\{username\}.*", min_length=3, max_length=500)
    ]
    group_role_map: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], Role]
    default_role: Role | None = None
    enabled: bool = True


class LdapConfigOut(LdapConfigIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    updated_at: datetime
