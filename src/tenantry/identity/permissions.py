"""The one permission matrix: what each role and each API-key scope may do (docs/security.md)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    ME = "me"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    API_KEYS_READ = "api_keys:read"
    API_KEYS_MANAGE = "api_keys:manage"
    SSO_MANAGE = "sso:manage"
    AUDIT_READ = "audit:read"
    CONFIG_READ = "config:read"
    CONFIG_MANAGE = "config:manage"
    USAGE_READ = "usage:read"
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_WRITE = "incidents:write"
    INCIDENTS_RESOLVE = "incidents:resolve"
    WEBHOOKS_MANAGE = "webhooks:manage"
    CONTENT_READ = "content:read"
    CONTENT_WRITE = "content:write"
    EXTERNAL = "external"


P = Permission
_VIEWER = {P.ME, P.CONTENT_READ, P.CONFIG_READ, P.INCIDENTS_READ}
_MEMBER = _VIEWER | {P.CONTENT_WRITE, P.USERS_READ, P.INCIDENTS_WRITE}
_ADMIN = _MEMBER | {
    P.USERS_MANAGE,
    P.API_KEYS_READ,
    P.API_KEYS_MANAGE,
    P.SSO_MANAGE,
    P.AUDIT_READ,
    P.CONFIG_MANAGE,
    P.USAGE_READ,
    P.INCIDENTS_RESOLVE,
    P.WEBHOOKS_MANAGE,
}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset(_VIEWER),
    "member": frozenset(_MEMBER),
    "admin": frozenset(_ADMIN),
    "owner": frozenset(_ADMIN),
}

SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "read": frozenset({P.ME, P.CONTENT_READ, P.USERS_READ, P.CONFIG_READ, P.INCIDENTS_READ}),
    "write": frozenset(
        {P.ME, P.CONTENT_READ, P.CONTENT_WRITE, P.INCIDENTS_READ, P.INCIDENTS_WRITE}
    ),
    "admin": frozenset(_ADMIN),
    "external": frozenset({P.ME, P.EXTERNAL}),
}

# Permissions only keys hold, within a role's reach when the role holds what they stand for:
# the external API reports incidents and searches knowledge.
KEY_ONLY: dict[Permission, frozenset[Permission]] = {
    P.EXTERNAL: frozenset({P.INCIDENTS_WRITE, P.CONTENT_READ}),
}

ROLES = ("owner", "admin", "member", "viewer")
SCOPES = tuple(SCOPE_PERMISSIONS)
ROLE_RANK = {role: rank for rank, role in enumerate(reversed(ROLES))}


def permissions_of(
    *, role: str | None = None, scopes: frozenset[str] = frozenset(), cap: str | None = None
) -> frozenset:
    """A user's role's permissions, or an API key's scopes' capped by `cap`: its creator's role
    now, so that a key never does more than the person who made it still may."""
    if role is not None:
        return ROLE_PERMISSIONS.get(role, frozenset())
    granted: set[Permission] = set()
    for scope in scopes:
        granted |= SCOPE_PERMISSIONS.get(scope, frozenset())
    return frozenset(granted) & _reach(cap)


def _reach(role: str | None) -> frozenset[Permission]:
    held = ROLE_PERMISSIONS.get(role, frozenset())
    return held | {key_only for key_only, needs in KEY_ONLY.items() if needs <= held}


def granted_to(subject) -> frozenset:
    """What a tenant's subject (a user, or an API key capped by its creator) may do now."""
    return permissions_of(role=subject.role, scopes=subject.scopes, cap=subject.creator_role)


def acting_role(subject) -> str:
    """The role whose reach a subject has when it grants or changes roles: a user's own; an API
    key's, an admin's at most, and never more than its creator's."""
    if subject.kind == "user":
        return subject.role
    return min(("admin", subject.creator_role), key=lambda role: ROLE_RANK.get(role, -1))
