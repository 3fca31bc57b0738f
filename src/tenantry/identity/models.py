"""Identity tables: operators and their tokens (control plane); users, their sign-in identities,
tokens, keys, and the tenant's LDAP and OIDC connections (tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantry.db.base import Base, TenantOwned, utcnow

TS = DateTime(timezone=True)


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="active")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)


class OperatorToken(Base):
    __tablename__ = "operator_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text, unique=True)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    operator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("operators.id"))
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)
    expires_at: Mapped[datetime | None] = mapped_column(TS)  # a generated bootstrap token's


class User(TenantOwned, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="active")
    auth_source: Mapped[str] = mapped_column(Text, default="local")
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)


class RefreshToken(TenantOwned, Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the token this one replaced
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    token_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class ApiKey(TenantOwned, Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # Removing the creator leaves the key without one, and a key without one does nothing.
        ForeignKeyConstraint(
            ["tenant_id", "created_by_user_id"],
            ["users.tenant_id", "users.id"],
            ondelete="SET NULL (created_by_user_id)",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text)
    lookup: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_by: Mapped[str] = mapped_column(Text)  # who, as the audit log names them
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # whose role caps it
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(TS)
    last_used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)

    creator: Mapped[User | None] = relationship(lazy="joined", viewonly=True)


class LdapConfig(TenantOwned, Base):
    __tablename__ = "ldap_configs"

    server_url: Mapped[str] = mapped_column(Text)
    base_dn: Mapped[str] = mapped_column(Text)
    bind_template: Mapped[str] = mapped_column(Text)
    group_role_map: Mapped[dict[str, Any]] = mapped_column(JSONB)
    default_role: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)
    configured_by_kind: Mapped[str | None] = mapped_column(Text)
    configured_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    configured_by_role: Mapped[str | None] = mapped_column(Text)


class UserIdentity(TenantOwned, Base):
    """A user's account at an identity source: (source, issuer, subject) names it, never an email.

    `issuer` is the LDAP server's URL or the OIDC issuer, so an identity from another directory or
    provider with the same subject is another identity.
    """

    __tablename__ = "user_identities"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("tenant_id", "source", "issuer", "subject"),
        Index("ix_user_identities_tenant_id_user_id", "tenant_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    source: Mapped[str] = mapped_column(Text)  # ldap, oidc
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    linked_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TS, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)


class OidcConfig(TenantOwned, Base):
    __tablename__ = "oidc_configs"

    issuer: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(Text)
    client_secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    allowed_domains: Mapped[list[str]] = mapped_column(ARRAY(Text))
    role_claim: Mapped[str | None] = mapped_column(Text)
    role_map: Mapped[dict[str, Any]] = mapped_column(JSONB)
    default_role: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    configured_by_kind: Mapped[str] = mapped_column(Text)
    configured_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    configured_by_role: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TS, default=utcnow, onupdate=utcnow)


class OidcLogin(TenantOwned, Base):
    """A sign-in in progress: what the callback needs, found by the digest of its `state`, and
    bound to the browser that started it (the digest of a cookie set then)."""

    __tablename__ = "oidc_logins"

    state_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    browser_hash: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(Text)
    code_verifier: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(TS)
