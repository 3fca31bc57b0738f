"""Linking a user to a sign-in identity of the tenant's directory or identity provider.

The only way an SSO sign-in reaches an account it did not create: someone who may manage the
user names the identity (an LDAP entry's DN, an OIDC `sub`) at the connection configured now.
Linking someone else's account to an identity you control is taking it over, so it needs more
than managing them: only the user themself, an owner, or someone who outranks the user may.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.paging import Keyset, page
from tenantry.errors import Conflict, Forbidden, NotFound
from tenantry.identity import users
from tenantry.identity.ldap import ldap_issuer
from tenantry.identity.models import LdapConfig, OidcConfig, User, UserIdentity
from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.schemas import IdentityLink

IDENTITIES = Keyset("identities", (UserIdentity.created_at, UserIdentity.id))


async def list_for(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> tuple[list[UserIdentity], str | None]:
    await users.get(session, tenant_id=tenant_id, user_id=user_id)
    query = select(UserIdentity).where(
        UserIdentity.tenant_id == tenant_id, UserIdentity.user_id == user_id
    )
    return await page(session, query, keyset=IDENTITIES, cursor=cursor, limit=limit)


async def link(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    data: IdentityLink,
    actor: str,
    actor_id: uuid.UUID | None,
    actor_role: str,
) -> UserIdentity:
    user = await users.get(session, tenant_id=tenant_id, user_id=user_id)
    _check_may_link(user, actor_id=actor_id, actor_role=actor_role)
    issuer = await _current_issuer(session, tenant_id, data.source)
    identity = UserIdentity(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        user_id=user.id,
        source=data.source,
        issuer=issuer,
        subject=data.normalised_subject(),
        linked_by=actor,
    )
    try:
        async with session.begin_nested():
            session.add(identity)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "That identity is already linked to an account of this tenant.",
            code="identity-linked",
        ) from None
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.identity_linked",
        target=f"user:{user.email}",
        after={"source": identity.source, "issuer": issuer, "subject": identity.subject},
    )
    return identity


async def unlink(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    identity_id: uuid.UUID,
    actor: str,
    actor_id: uuid.UUID | None,
    actor_role: str,
) -> None:
    user = await users.get(session, tenant_id=tenant_id, user_id=user_id)
    users.check_can_grant(actor_role, user.role)
    identity = await session.scalar(
        select(UserIdentity).where(
            UserIdentity.tenant_id == tenant_id,
            UserIdentity.user_id == user_id,
            UserIdentity.id == identity_id,
        )
    )
    if identity is None:
        raise NotFound("No such identity.")
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.identity_unlinked",
        target=f"user:{user.email}",
        before={"source": identity.source, "issuer": identity.issuer, "subject": identity.subject},
    )
    await session.delete(identity)
    await session.flush()


def _check_may_link(user: User, *, actor_id: uuid.UUID | None, actor_role: str) -> None:
    if actor_id == user.id or actor_role == "owner":
        return
    if ROLE_RANK[actor_role] <= ROLE_RANK[user.role]:
        raise Forbidden(
            f"A {actor_role} cannot link a sign-in to a {user.role}'s account: it would let "
            "whoever controls that identity act as them."
        )


async def _current_issuer(session: AsyncSession, tenant_id: uuid.UUID, source: str) -> str:
    if source == "ldap":
        config = await session.get(LdapConfig, tenant_id)
        if config is not None:
            return ldap_issuer(config.server_url)
    else:
        config = await session.get(OidcConfig, tenant_id)
        if config is not None:
            return config.issuer
    raise NotFound(f"This tenant has no {source.upper()} connection to link to.")
