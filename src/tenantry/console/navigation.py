"""The console's menu: what the signed-in subject may open, nothing more."""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.identity.permissions import Permission, permissions_of
from tenantry.tenancy.subjects import Subject

P = Permission

OPERATOR_MENU = (
    ("Tenants", "/console/admin/tenants"),
    ("Tier templates", "/console/admin/tiers"),
    ("Operators", "/console/admin/operators"),
    ("Billing export", "/console/admin/usage"),
)
TENANT_MENU = (
    ("Overview", "/console/overview", P.ME),
    ("Documents", "/console/documents", P.CONTENT_READ),
    ("Incidents", "/console/incidents", P.INCIDENTS_READ),
    ("Users", "/console/users", P.USERS_READ),
    ("API keys", "/console/api-keys", P.API_KEYS_READ),
    ("Webhooks", "/console/webhooks", P.WEBHOOKS_MANAGE),
    ("Single sign-on", "/console/sso", P.SSO_MANAGE),
    ("Configuration", "/console/config", P.CONFIG_READ),
    ("Usage and limits", "/console/usage", P.USAGE_READ),
)


@dataclass(frozen=True)
class Entry:
    label: str
    href: str
    current: bool


def navigation(subject: Subject | None, path: str) -> list[Entry]:
    if subject is None:
        return []
    if subject.is_operator:
        items = list(OPERATOR_MENU)
    else:
        granted = permissions_of(role=subject.role, scopes=subject.scopes)
        items = [(label, href) for label, href, needed in TENANT_MENU if needed in granted]
    return [
        Entry(label, href, path == href or path.startswith(href + "/")) for label, href in items
    ]
