"""Tenant users: create, list, change role or status, remove; the last owner always stays."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import service as audit
from tenantry.db.paging import Keyset, page
from tenantry.errors import Conflict, Forbidden, NotFound
from tenantry.identity.models import User
from tenantry.identity.passwords import check_policy, hash_password
from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.schemas import UserCreate, UserUpdate
from tenantry.limits.quotas import reserve

USERS = Keyset("users", (User.email, User.id))


class LastOwner(Conflict):
    code, title = "last-owner", "The last owner must stay"


def _snapshot(user: User) -> dict:
    return {"email": user.email, "role": user.role, "status": user.status}


def check_can_grant(actor_role: str | None, role: str) -> None:
    """Nobody hands out a role above their own; operators (actor_role None) may grant any."""
    if actor_role is not None and ROLE_RANK[role] > ROLE_RANK[actor_role]:
        raise Forbidden(f"A {actor_role} cannot grant the {role} role.")


async def create(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    data: UserCreate,
    actor: str,
    actor_role: str | None,
    quota: int | None = None,
) -> User:
    check_can_grant(actor_role, data.role)
    check_policy(data.password)
    password_hash = await hash_password(data.password)  # slow: before any lock is held
    if quota is not None:
        await reserve(
            session,
            tenant_id=tenant_id,
            quota="users",
            limit=quota,
            used=select(func.count()).where(User.tenant_id == tenant_id),
        )
    email = data.email.lower()
    if await session.scalar(
        select(User.id).where(User.tenant_id == tenant_id, User.email == email)
    ):
        raise Conflict(f"A user with email {email} already exists.", code="user-exists")
    user = User(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        email=email,
        display_name=data.display_name or email.split("@")[0],
        password_hash=password_hash,
        role=data.role,
        status="active",
        auth_source="local",
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.created",
        target=f"user:{email}",
        after=_snapshot(user),
    )
    return user


async def list_users(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    query = select(User).where(User.tenant_id == tenant_id)
    return await page(session, query, keyset=USERS, cursor=cursor, limit=limit)


async def get(session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    user = await session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None:
        raise NotFound("No such user.")
    return user


async def update(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    data: UserUpdate,
    actor: str,
    actor_role: str | None,
) -> User:
    user, owners = await lock_with_owners(session, tenant_id, user_id)
    before = _snapshot(user)
    if data.role is not None and data.role != user.role:
        check_can_grant(actor_role, data.role)
        check_can_grant(actor_role, user.role)
        _keep_an_owner(user, owners, losing=user.role == "owner")
        user.role = data.role
    if data.status is not None and data.status != user.status:
        check_can_grant(actor_role, user.role)
        _keep_an_owner(user, owners, losing=data.status == "disabled")
        user.status = data.status
    if data.display_name is not None:
        user.display_name = data.display_name
    await session.flush()
    if before["role"] != user.role:
        await _audit(session, tenant_id, actor, "user.role_changed", user, before)
    if before["status"] != user.status:
        await _audit(
            session,
            tenant_id,
            actor,
            f"user.{'disabled' if user.status == 'disabled' else 'enabled'}",
            user,
            before,
        )
    return user


async def remove(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    actor: str,
    actor_role: str | None,
) -> None:
    user, owners = await lock_with_owners(session, tenant_id, user_id)
    check_can_grant(actor_role, user.role)
    _keep_an_owner(user, owners, losing=True)
    await _audit(session, tenant_id, actor, "user.removed", user, _snapshot(user))
    await session.delete(user)
    await session.flush()


async def lock_with_owners(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[User, set[uuid.UUID]]:
    """Lock the user and every active owner in one statement, in id order, before changing any.

    Two admins demoting two different owners at once each lock the same rows in the same order,
    so the second waits for the first and then sees one owner fewer; locking their own target
    first and the owners after, they would each hold a row the other waits for.
    """
    rows = (
        await session.scalars(
            select(User)
            .where(
                User.tenant_id == tenant_id,
                or_(User.id == user_id, and_(User.role == "owner", User.status == "active")),
            )
            .order_by(User.id)
            .with_for_update()
        )
    ).all()
    user = next((row for row in rows if row.id == user_id), None)
    if user is None:
        raise NotFound("No such user.")
    return user, {row.id for row in rows if row.role == "owner" and row.status == "active"}


def _keep_an_owner(user: User, owners: set[uuid.UUID], *, losing: bool) -> None:
    if not losing or user.role != "owner" or user.status != "active":
        return
    if owners <= {user.id}:
        raise LastOwner("The tenant's last owner cannot be removed, disabled or demoted.")


async def _audit(session, tenant_id, actor, action, user: User, before: dict | None) -> None:
    await audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        target=f"user:{user.email}",
        before=before,
        after=_snapshot(user),
    )
