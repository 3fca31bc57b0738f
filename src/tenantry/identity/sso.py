"""Per-tenant LDAP settings, and the LDAP login: read the settings, bind at the directory with no
transaction open, then find or create the user in a second transaction (see `sso_accounts`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.session import Database
from tenantry.egress.gate import EgressGate
from tenantry.egress.policy import EgressError, EgressPolicy, EgressRefused
from tenantry.egress.problems import problem
from tenantry.errors import NotFound, ValidationFailed
from tenantry.identity import ldap
from tenantry.identity.ldap import Directory
from tenantry.identity.models import LdapConfig
from tenantry.identity.schemas import LdapConfigIn
from tenantry.identity.sessions import Outcome
from tenantry.identity.sso_accounts import Configurer, NoMappedRole, SignIn, sign_in
from tenantry.identity.sso_config import check_mapping, remove_connection, save_connection
from tenantry.settings import Settings
from tenantry.tenancy.subjects import Subject
from tenantry.tenants.models import Tenant

__all__ = ["NoMappedRole", "delete_config", "get_config", "login", "put_config"]


async def get_config(session: AsyncSession, *, tenant_id: uuid.UUID) -> LdapConfig:
    config = await session.get(LdapConfig, tenant_id)
    if config is None:
        raise NotFound("LDAP is not configured for this tenant.")
    return config


async def put_config(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    data: LdapConfigIn,
    actor: Subject,
) -> LdapConfig:
    by = check_mapping(actor, [*data.group_role_map.values(), data.default_role])
    return await save_connection(
        session,
        model=LdapConfig,
        source="ldap",
        tenant_id=tenant_id,
        fields=data.model_dump(),
        by=by,
        actor=actor,
        public=_public,
    )


async def check_reachable(policy: EgressPolicy, url: str) -> None:
    """A 422 now for a directory the egress policy refuses; each login judges it again."""
    try:
        await policy.target(url, schemes=ldap.SCHEMES)
    except EgressRefused as error:
        raise ValidationFailed(
            f"The directory may not be reached: {error}.",
            code="forbidden-egress-target",
            errors=[{"field": "body.server_url", "message": str(error)}],
        ) from None


async def delete_config(session: AsyncSession, *, tenant_id: uuid.UUID, actor: str) -> None:
    config = await get_config(session, tenant_id=tenant_id)
    await remove_connection(
        session, config=config, source="ldap", tenant_id=tenant_id, actor=actor, public=_public
    )


async def login(
    db: Database,
    *,
    tenant_slug: str,
    username: str,
    password: str,
    settings: Settings,
    key: str,
    policy: EgressPolicy,
    gate: EgressGate,
    users_quota: Callable[[uuid.UUID], Awaitable[int]],
) -> Outcome:
    """Owns its transactions: none is open while the directory is asked. The tenant is found on
    the control plane; its settings, users and session live in its cell (`db.tenant`)."""
    tenant = await _live_tenant(db, tenant_slug)
    config = None
    if tenant is not None:
        async with db.tenant(tenant.id) as session:
            config = await session.get(LdapConfig, tenant.id)
    if tenant is None or config is None or not config.enabled:
        return Outcome(failure="invalid")
    directory, tenant_id = Directory.of(config), tenant.id
    try:
        async with gate.slot(tenant_id):
            identity = await ldap.authenticate(
                directory, username, password, policy=policy, seconds=settings.sso_timeout_seconds
            )
    except EgressError as error:
        raise problem(error, what="The tenant's directory") from error
    quota = await users_quota(tenant_id) if identity is not None else 0
    tenant = await _live_tenant(db, tenant_slug)
    if tenant is None or tenant.id != tenant_id:
        return Outcome(failure="invalid")
    async with db.tenant(tenant.id) as session:
        config = await session.get(LdapConfig, tenant.id)
        if config is None or not config.enabled:
            return Outcome(failure="invalid")
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
        if ldap.ldap_issuer(config.server_url) != directory.issuer:
            return Outcome(failure="invalid")  # the directory changed while this one answered
        current = Directory.of(config)
        email = identity.email or (username if "@" in username else f"{username}@ldap.invalid")
        return await sign_in(
            session,
            tenant=tenant,
            attempt=SignIn(
                source="ldap",
                issuer=current.issuer,
                subject=identity.dn.lower(),
                email=email,
                display_name=identity.display_name,
                mapped_role=ldap.mapped_role(current, identity),
            ),
            by=Configurer.of(config),
            users_quota=quota,
            settings=settings,
            key=key,
        )


async def _live_tenant(db: Database, slug: str) -> Tenant | None:
    """The tenant as the control plane has it (its status, its placement), or None."""
    async with db.control() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None or tenant.status in ("deleting", "deleted"):
        return None
    return tenant


def _public(config: LdapConfig) -> dict:
    return LdapConfigIn.model_validate(config, from_attributes=True).model_dump()
