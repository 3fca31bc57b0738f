"""What a single sign-on does to accounts, whichever the source (LDAP, OIDC).

- An identity is (source, issuer, subject): a directory entry's DN at that directory's URL, an
  OIDC `sub` at that issuer. A sign-in finds its user through its identity and nothing else: an
  email that matches a local account does not make the two one (an admin links them first,
  `identities.link`), so whoever controls a directory cannot become the owner by giving an entry
  the owner's address.
- Roles from a directory's groups or a provider's claims are capped at the rank of whoever saved
  the mapping, then and now, the lower; a user whose role is above that cap is out of the
  mapping's reach, and the tenant's last active owner stays an owner whatever the mapping says.
- A first sign-in creates the user, and takes its place in the users quota like any creation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.base import utcnow
from tenantry.errors import Conflict, Forbidden
from tenantry.identity.models import ApiKey, User, UserIdentity
from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.sessions import Outcome, open_session
from tenantry.identity.users import lock_with_owners
from tenantry.limits.quotas import hold, reserve
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

LOWEST_ROLE = "viewer"
LEGACY_MAPPING_ROLE = "admin"  # mappings saved before their configurer was recorded


class NoMappedRole(Forbidden):
    code, title = "sso-no-role", "No role for this directory user"


class NotLinked(Conflict):
    code, title = "sso-not-linked", "This sign-in is not linked to the existing account"


@dataclass(frozen=True)
class Configurer:
    """Who saved a connection's role mapping, and their role then."""

    kind: str | None  # user, api_key; None: unknown (saved before this was recorded)
    id: uuid.UUID | None
    role: str | None

    @classmethod
    def of(cls, config) -> Configurer:
        return cls(config.configured_by_kind, config.configured_by_id, config.configured_by_role)


@dataclass(frozen=True)
class SignIn:
    source: str  # ldap, oidc
    issuer: str
    subject: str
    email: str
    display_name: str | None
    mapped_role: str | None  # what the directory or the claims map to, before the cap


def lower(*roles: str) -> str:
    return min(roles, key=ROLE_RANK.__getitem__)


async def authority(session: AsyncSession, *, tenant_id: uuid.UUID, by: Configurer) -> str:
    """The highest role a mapping may hand out now: its configurer's role then and now, the
    lower. A configurer who is gone, disabled or revoked grants no more than the lowest role."""
    if by.kind is None:
        return LEGACY_MAPPING_ROLE
    now: str | None = None
    if by.kind == "user":
        row = (
            await session.execute(
                select(User.role, User.status).where(User.tenant_id == tenant_id, User.id == by.id)
            )
        ).first()
        now = row.role if row is not None and row.status == "active" else None
    elif by.kind == "api_key":
        key = await session.scalar(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == by.id)
        )
        live = (
            key is not None
            and key.revoked_at is None
            and (key.expires_at is None or key.expires_at > utcnow())
        )
        now = LEGACY_MAPPING_ROLE if live else None
    if now is None or by.role is None:
        return LOWEST_ROLE
    return lower(by.role, now)


def synced_role(current: str, mapped: str, cap: str, *, last_owner: bool) -> str:
    """The role a linked user ends with after a sign-in."""
    if ROLE_RANK[current] > ROLE_RANK[cap]:
        return current  # above what the mapping's configurer may touch
    wanted = lower(mapped, cap)
    if current == "owner" and last_owner and wanted != "owner":
        return current  # the last owner always stays
    return wanted


async def sign_in(
    session: AsyncSession,
    *,
    tenant: Tenant,
    attempt: SignIn,
    by: Configurer,
    users_quota: int,
    settings: Settings,
    key: str,
) -> Outcome:
    """The user behind `attempt` (created on the first sign-in), their role synced, a session."""
    cap = await authority(session, tenant_id=tenant.id, by=by)
    identity = await _identity(session, tenant.id, attempt)
    if identity is None:
        if attempt.mapped_role is None:
            raise NoMappedRole("The sign-in maps to no role in this tenant.")
        # Creations of users queue here; another sign-in of the same identity may have created
        # it while this one waited, and then it is a sign-in, not a creation, whatever the quota.
        await hold(session, tenant_id=tenant.id, quota="users")
        identity = await _identity(session, tenant.id, attempt)
        if identity is None:
            await reserve(
                session,
                tenant_id=tenant.id,
                quota="users",
                limit=users_quota,
                used=select(func.count()).where(User.tenant_id == tenant.id),
            )
    if identity is None:
        user = await _create(session, tenant.id, attempt, lower(attempt.mapped_role, cap))
    else:
        if attempt.mapped_role is None:
            raise NoMappedRole("The sign-in maps to no role in this tenant.")
        user = await _sync(session, tenant.id, identity, attempt, cap)
        identity.last_login_at = utcnow()
    if user.status != "active":
        return Outcome(failure="user-disabled")
    tokens = await open_session(
        session, tenant=tenant, user=user, settings=settings, key=key, action="login.sso"
    )
    return Outcome(tokens=tokens)


async def _identity(session, tenant_id, attempt: SignIn) -> UserIdentity | None:
    return await session.scalar(
        select(UserIdentity).where(
            UserIdentity.tenant_id == tenant_id,
            UserIdentity.source == attempt.source,
            UserIdentity.issuer == attempt.issuer,
            UserIdentity.subject == attempt.subject,
        )
    )


async def _create(session, tenant_id, attempt: SignIn, role: str) -> User:
    email = attempt.email.lower()
    if await session.scalar(
        select(User.id).where(User.tenant_id == tenant_id, User.email == email)
    ):
        raise NotLinked(
            f"An account with the email {email} already exists, and this {attempt.source} "
            "sign-in is not linked to it; an admin of the tenant can link them."
        )
    user = User(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        email=email,
        display_name=attempt.display_name or email.split("@")[0],
        password_hash=None,
        role=role,
        status="active",
        auth_source=attempt.source,
    )
    session.add(user)
    await session.flush()
    session.add(
        UserIdentity(
            tenant_id=tenant_id,
            id=uuid.uuid4(),
            user_id=user.id,
            source=attempt.source,
            issuer=attempt.issuer,
            subject=attempt.subject,
            linked_by=f"sso:{attempt.source}",
            last_login_at=utcnow(),
        )
    )
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=f"sso:{attempt.source}",
        action="user.created",
        target=f"user:{email}",
        after={"role": role, "auth_source": attempt.source},
    )
    return user


async def _sync(session, tenant_id, identity: UserIdentity, attempt: SignIn, cap: str) -> User:
    user, owners = await lock_with_owners(session, tenant_id, identity.user_id)
    last_owner = user.role == "owner" and user.status == "active" and owners <= {user.id}
    role = synced_role(user.role, attempt.mapped_role, cap, last_owner=last_owner)
    if role != user.role:
        before = {"role": user.role}
        user.role = role
        await audit.record(
            session,
            tenant_id=tenant_id,
            actor=f"sso:{attempt.source}",
            action="user.role_changed",
            target=f"user:{user.email}",
            before=before,
            after={"role": role},
        )
    return user
