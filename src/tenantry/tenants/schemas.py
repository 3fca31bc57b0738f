"""Tenant lifecycle payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tenantry.api_types import Name, pattern_text

Tier = Literal["free", "standard", "enterprise"]
Status = Literal["active", "suspended", "deleting", "deleted"]
Slug = pattern_text(r"^[a-z][a-z0-9-]{2,39}$", max_length=40)

TIERS: tuple[Tier, ...] = ("free", "standard", "enterprise")


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug = Field(description="Lower-case handle: a letter, then 2-39 letters, digits or '-'.")
    name: Name
    tier: Tier = "free"


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tier: Tier | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> TenantUpdate:
        if self.name is None and self.tier is None:
            raise ValueError("name or tier is required")
        return self


class Namespace(BaseModel):
    """Where the tenant's data and work live, as seed 000's DataIsolationManager records it."""

    cell: str
    task_queue: str
    cache_prefix: str
    log_label: str


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    tier: Tier
    status: Status
    namespace: Namespace
    created_at: datetime
    updated_at: datetime
    suspended_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def of(cls, tenant) -> TenantOut:
        return cls(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            tier=tenant.tier,
            status=tenant.status,
            namespace=Namespace(
                cell=tenant.cell,
                task_queue=tenant.task_queue,
                cache_prefix=tenant.cache_prefix,
                log_label=tenant.log_label,
            ),
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            suspended_at=tenant.suspended_at,
            deleted_at=tenant.deleted_at,
        )


class CellIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, description="Lower-case letters, digits, '-'.")
    database: str | None = Field(
        default=None, max_length=63, description="A new database on the control plane's server."
    )
    url_env: str | None = Field(
        default=None,
        max_length=100,
        description="Or the environment variable holding the cell server's admin URL.",
    )
    kind: Literal["pool", "silo"] = Field(
        default="pool",
        description="`pool`: many tenants on the shared workers; `silo`: a tenant's own "
        "placement (a move there gives it its own task queue and worker).",
    )


class CellOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    database: str | None
    url_env: str | None
    kind: str
