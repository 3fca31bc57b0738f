"""SSO by LDAP (seed 003): bind as the user, read their groups, map groups to a role."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ldap3 import BASE, NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from tenantry.errors import ServiceUnavailable
from tenantry.identity.models import LdapConfig
from tenantry.identity.permissions import ROLE_RANK

TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class LdapIdentity:
    dn: str
    email: str | None
    display_name: str | None
    groups: tuple[str, ...]  # both the cn and the full DN of each group


def _first(entry, attribute: str) -> str | None:
    values = entry[attribute].values if attribute in entry else []
    return str(values[0]) if values else None


def bind_and_read(config: LdapConfig, username: str, password: str) -> LdapIdentity | None:
    """Blocking: bind as the user; None when the directory says no."""
    if not password:  # an empty password would be an anonymous bind, which "succeeds"
        return None
    server = Server(config.server_url, connect_timeout=TIMEOUT_SECONDS, get_info=NONE)
    dn = config.bind_template.format(username=escape_rdn(username))
    conn = Connection(server, user=dn, password=password, receive_timeout=TIMEOUT_SECONDS)
    try:
        if not conn.bind():
            return None
        conn.search(dn, "(objectClass=*)", BASE, attributes=["mail", "cn", "displayName"])
        entry = conn.entries[0] if conn.entries else None
        conn.search(
            config.base_dn,
            f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))",
            SUBTREE,
            attributes=["cn"],
        )
        groups: list[str] = []
        for group in conn.entries:
            groups += [group.entry_dn, *[str(cn) for cn in group["cn"].values]]
        return LdapIdentity(
            dn=dn,
            email=_first(entry, "mail") if entry else None,
            display_name=(_first(entry, "displayName") or _first(entry, "cn")) if entry else None,
            groups=tuple(groups),
        )
    except LDAPException as error:
        raise ServiceUnavailable(
            f"The tenant's directory could not be reached ({type(error).__name__})."
        ) from error
    finally:
        conn.unbind()


async def authenticate(config: LdapConfig, username: str, password: str) -> LdapIdentity | None:
    return await asyncio.to_thread(bind_and_read, config, username, password)


def mapped_role(config: LdapConfig, identity: LdapIdentity) -> str | None:
    """The highest role any of the user's groups maps to, else the default (maybe none)."""
    roles = [role for group, role in config.group_role_map.items() if group in identity.groups]
    if roles:
        return max(roles, key=ROLE_RANK.__getitem__)
    return config.default_role
