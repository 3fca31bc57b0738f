"""What every SSO connection's settings share: who saved the role mapping, and the rule that
nobody maps a directory group or a claim to a role above their own."""

from __future__ import annotations

from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.sso_accounts import Configurer
from tenantry.identity.users import check_can_grant
from tenantry.tenancy.subjects import Subject


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
