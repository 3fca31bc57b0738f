"""What every SSO connection's settings share: who saved the role mapping, the rule that nobody
maps a directory group or a claim to a role above their own, and how a connection is saved."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.sso_accounts import Configurer
from tenantry.identity.users import check_can_grant
from tenantry.tenancy.subjects import Subject

Connection = TypeVar("Connection")


def actor_role(subject: Subject) -> str:
    # An admin-scoped API key acts with an admin's reach, never an owner's.
    return subject.role if subject.kind == "user" and subject.role else "admin"


def check_mapping(subject: Subject, roles: list[str | None]) -> Configurer:
    """Refuse a mapping to a role above the subject's own (403); return who configured it."""
    role = actor_role(subject)
    for mapped in {r for r in roles if r is not None}:
        check_can_grant(role, mapped)
    assert role in ROLE_RANK
    return Configurer(kind=subject.kind, id=subject.id, role=role)


async def save_connection(
    session: AsyncSession,
    *,
    model: type[Connection],
    source: str,
    tenant_id: uuid.UUID,
    fields: dict[str, Any],
    by: Configurer,
    actor: Subject,
    public: Callable[[Connection], dict],
) -> Connection:
    """Create or update the tenant's `source` connection and audit it in the same transaction;
    `public` says what of it the audit log may hold (never a secret)."""
    config = await session.get(model, tenant_id)
    before = public(config) if config is not None else None
    fields = {
        **fields,
        "configured_by_kind": by.kind,
        "configured_by_id": by.id,
        "configured_by_role": by.role,
    }
    if config is None:
        config = model(tenant_id=tenant_id, **fields)
        session.add(config)
    else:
        for name, value in fields.items():
            setattr(config, name, value)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor.audit_name,
        action=f"sso.{source}_configured",
        target=f"sso:{source}",
        before=before,
        after=public(config),
    )
    return config


async def remove_connection(
    session: AsyncSession,
    *,
    config: Connection,
    source: str,
    tenant_id: uuid.UUID,
    actor: str,
    public: Callable[[Connection], dict],
) -> None:
    """Delete the tenant's `source` connection, audited in the same transaction."""
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=f"sso.{source}_removed",
        target=f"sso:{source}",
        before=public(config),
    )
    await session.delete(config)
