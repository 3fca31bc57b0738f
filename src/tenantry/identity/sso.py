"""Per-tenant LDAP settings and the login that creates or updates the user from the directory."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.session import set_tenant
from tenantry.errors import Forbidden, NotFound
from tenantry.identity import ldap
from tenantry.identity.models import LdapConfig, User
from tenantry.identity.schemas import LdapConfigIn
from tenantry.identity.sessions import Outcome, open_session
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant


class NoMappedRole(Forbidden):
    code, title = "sso-no-role", "No role for this directory user"


async def get_config(session: AsyncSession, *, tenant_id: uuid.UUID) -> LdapConfig:
    config = await session.get(LdapConfig, tenant_id)
    if config is None:
        raise NotFound("LDAP is not configured for this tenant.")
    return config


async def put_config(
    session: AsyncSession, *, tenant_id: uuid.UUID, data: LdapConfigIn, actor: str
) -> LdapConfig:
    config = await session.get(LdapConfig, tenant_id)
    before = _public(config) if config else None
    if config is None:
        config = LdapConfig(tenant_id=tenant_id, **data.model_dump())
        session.add(config)
    else:
        for field, value in data.model_dump().items():
            setattr(config, field, value)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="sso.ldap_configured",
        target="sso:ldap",
        before=before,
        after=_public(config),
    )
    return config


async def delete_config(session: AsyncSession, *, tenant_id: uuid.UUID, actor: str) -> None:
    config = await get_config(session, tenant_id=tenant_id)
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="sso.ldap_removed",
        target="sso:ldap",
        before=_public(config),
    )
    await session.delete(config)


async def login(
    session: AsyncSession,
    *,
    tenant: Tenant | None,
    username: str,
    password: str,
    settings: Settings,
    key: str,
) -> Outcome:
    if tenant is None or tenant.status in ("deleting", "deleted"):
        return Outcome(failure="invalid")
    await set_tenant(session, tenant.id)
    config = await session.get(LdapConfig, tenant.id)
    if config is None or not config.enabled:
        return Outcome(failure="invalid")
    identity = await ldap.authenticate(config, username, password)
    if identity is None:
        await audit.record(
            session,
            tenant_id=tenant.id,
            actor="anonymous",
            action="login.failed",
            target=f"ldap:{username}",
        )
        return Outcome(failure="invalid")
    if tenant.status == "suspended":
        return Outcome(failure="tenant-suspended")
    role = ldap.mapped_role(config, identity)
    if role is None:
        raise NoMappedRole("The directory user is in no group that maps to a role.")
    email = (
        identity.email or (username if "@" in username else f"{username}@ldap.invalid")
    ).lower()
    user = await _upsert_user(session, tenant.id, email, identity, role)
    if user.status != "active":
        return Outcome(failure="user-disabled")
    tokens = await open_session(
        session, tenant=tenant, user=user, settings=settings, key=key, action="login.sso"
    )
    return Outcome(tokens=tokens)


async def _upsert_user(session, tenant_id, email, identity, role) -> User:
    user = await session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.email == email).with_for_update()
    )
    if user is None:
        user = User(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            email=email,
            display_name=identity.display_name or email.split("@")[0],
            password_hash=None,
            role=role,
            status="active",
            auth_source="ldap",
        )
        session.add(user)
        await session.flush()
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor="sso:ldap",
            action="user.created",
            target=f"user:{email}",
            after={"role": role, "auth_source": "ldap"},
        )
    elif user.role != role:
        before = {"role": user.role}
        user.role = role
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor="sso:ldap",
            action="user.role_changed",
            target=f"user:{email}",
            before=before,
            after={"role": role},
        )
    return user


def _public(config: LdapConfig) -> dict:
    return LdapConfigIn.model_validate(config, from_attributes=True).model_dump()
