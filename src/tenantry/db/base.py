"""Declarative base with one naming convention, and the column every tenant-owned table carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TenantOwned:
    """Mixin for tenant-owned tables: the migration that creates one must also enable forced RLS."""

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        # First column of the primary key, so that every index leads with the tenant.
        return mapped_column(Uuid, ForeignKey("tenants.id"), primary_key=True)


def tenant_owned_tables() -> list[str]:
    """Tenant-owned tables in dependency order (children last), as the models declare them."""
    return [t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.columns]


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
