"""Identity payloads. Tokens come back as OAuth 2 clients expect them."""

from __future__ import annotations

import uuid
from datetime import datetime
from string import Formatter
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

from tenantry.api_types import Flag, Instant, Name, Password, Secret, SlugRef, pattern_text, text

Role = Literal["owner", "admin", "member", "viewer"]
Scope = Literal["read", "write", "admin", "external"]
Username = text(200, min_length=1)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    tenant: SlugRef
    email: EmailStr
    password: Password


class LdapLoginIn(Strict):
    tenant: SlugRef
    username: Username
    password: Password


class RefreshIn(Strict):
    refresh_token: Secret


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


class ApiKeyCreate(Strict):
    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=4)]
    expires_at: Instant | None = None


class ApiKeyCreator(BaseModel):
    """The user who made a key; their role now caps what the key may do."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    status: str


ApiKeyState = Literal["active", "revoked", "expired", "creator_disabled", "creator_removed"]


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    state: ApiKeyState = Field(
        description="`creator_disabled` and `creator_removed` keys do nothing: a key works only "
        "while the user who made it is active, and only within that user's role."
    )
    created_by: str
    creator: ApiKeyCreator | None = Field(description="None once the creator was removed.")
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


def _valid_port(url: str) -> str:
    after_host = url.rstrip("/").rpartition("]")[2] if "[" in url else url.rstrip("/")[7:]
    _, colon, port = after_host.rpartition(":")
    if colon and not 1 <= int(port) <= 65535:  # the pattern allows 1 to 5 digits only
        raise ValueError("the port must be between 1 and 65535")
    return url


def _only_username_field(template: str) -> str:
    """The template is filled with str.format: any field but a plain {username} would fail."""
    try:
        fields = [
            (f, spec, conv) for _, f, spec, conv in Formatter().parse(template) if f is not None
        ]
    except ValueError as error:
        raise ValueError(f"is not a valid template ({error})") from None
    if any(f != "username" or spec or conv for f, spec, conv in fields):
        raise ValueError("the only placeholder allowed is {username}; write { and } as {{ and }}")
    return template


class LdapConfigIn(Strict):
    server_url: Annotated[
        # A host name or an IP literal, IPv6 in brackets as RFC 3986 writes it.
        pattern_text(
            r"^ldaps?://(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]\x00]+)(:[0-9]{1,5})?/?$", max_length=500
        ),
        AfterValidator(_valid_port),
    ]
    base_dn: text(500, min_length=3)
    bind_template: Annotated[
        text(500, min_length=3),
        Field(pattern=r"^[^\x00]*\{username\}[^\x00]*$"),
        AfterValidator(_only_username_field),
    ]
    group_role_map: Annotated[dict[text(200, min_length=1), Role], Field(max_length=100)]
    default_role: Role | None = None
    enabled: Flag = True


class LdapConfigOut(LdapConfigIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    updated_at: datetime


class IdentityLink(Strict):
    source: Literal["ldap", "oidc"]
    subject: Annotated[
        text(500, min_length=1, strip=True),
        Field(description="The LDAP entry's DN, or the OIDC `sub`, at the tenant's connection."),
    ]

    def normalised_subject(self) -> str:
        # DNs compare without regard to case, as the LDAP login stores them; an OIDC `sub` is
        # case-sensitive.
        return self.subject.lower() if self.source == "ldap" else self.subject


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source: str
    issuer: str
    subject: str
    linked_by: str
    created_at: datetime
    last_login_at: datetime | None


Domain = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$",
    ),
]
ClaimValue = text(200, min_length=1)


class OidcConfigIn(Strict):
    issuer: Annotated[
        pattern_text(r"^https?://[^\s?#\x00]+$", max_length=500, strip=True),
        Field(description="The provider's issuer URL, exactly as its ID tokens name it."),
    ]
    client_id: text(500, min_length=1)
    client_secret: Annotated[
        text(2000, min_length=1) | None,
        Field(description="Stored encrypted, never returned; omit to keep the stored one."),
    ] = None
    allowed_domains: Annotated[list[Domain], Field(min_length=1, max_length=100)]
    role_claim: text(100, min_length=1) | None = None
    role_map: Annotated[dict[ClaimValue, Role], Field(max_length=200)] = Field(default_factory=dict)
    default_role: Role | None = None
    enabled: Flag = True


class OidcConfigOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    issuer: str
    client_id: str
    client_secret_set: bool = True
    allowed_domains: list[str]
    role_claim: str | None
    role_map: dict[str, str]
    default_role: str | None
    enabled: bool
    redirect_uri: str = Field(description="Register this callback with the provider.")
    updated_at: datetime
