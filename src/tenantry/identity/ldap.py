"""SSO by LDAP (seed 003): bind as the user, read their entry and groups, map groups to a role.

The directory is reached under the egress policy: its host is resolved once and judged, and the
connection goes to that address (TLS still checks the certificate against the host name);
referrals are not followed; every operation has a timeout. It runs on threads of its own, never
the event loop's default pool, and never while a database transaction is open.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPResponseTimeoutError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from tenantry.egress.http import EgressTimeout, EgressUnreachable
from tenantry.egress.policy import DEFAULT_PORTS, EgressPolicy, Target
from tenantry.identity.permissions import ROLE_RANK

SCHEMES = ("ldap", "ldaps")
# Every tenant's binds share these threads; the egress gate caps each tenant's share.
_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ldap")


@dataclass(frozen=True)
class Directory:
    """What a login needs of a tenant's LDAP settings, read before the transaction closed."""

    server_url: str
    base_dn: str
    bind_template: str
    group_role_map: dict[str, str]
    default_role: str | None

    @classmethod
    def of(cls, config) -> Directory:
        return cls(
            config.server_url,
            config.base_dn,
            config.bind_template,
            dict(config.group_role_map),
            config.default_role,
        )

    @property
    def issuer(self) -> str:
        return ldap_issuer(self.server_url)


@dataclass(frozen=True)
class LdapIdentity:
    dn: str
    email: str | None
    display_name: str | None
    groups: tuple[str, ...]  # both the cn and the full DN of each group


def ldap_issuer(server_url: str) -> str:
    """The directory an identity belongs to: scheme, host and port of its URL."""
    parts = urlsplit(server_url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _first(entry, attribute: str) -> str | None:
    values = entry[attribute].values if attribute in entry else []
    return str(values[0]) if values else None


def bind_and_read(
    directory: Directory, target: Target, username: str, password: str, timeout: float
) -> LdapIdentity | None:
    """Blocking: bind as the user at the judged address; None when the directory says no."""
    if not password:  # an empty password would be an anonymous bind, which "succeeds"
        return None
    tls = None
    if target.scheme == "ldaps":
        tls = Tls(validate=ssl.CERT_REQUIRED, valid_names=[target.host], sni=target.host)
    server = Server(
        target.address,
        port=target.port,
        use_ssl=target.scheme == "ldaps",
        tls=tls,
        connect_timeout=timeout,
        get_info=NONE,
    )
    dn = directory.bind_template.format(username=escape_rdn(username))
    conn = Connection(
        server,
        user=dn,
        password=password,
        receive_timeout=max(1, math.ceil(timeout)),  # ldap3 packs it as whole seconds
        auto_referrals=False,
    )
    try:
        if not conn.bind():
            return None
        conn.search(dn, "(objectClass=*)", BASE, attributes=["mail", "cn", "displayName"])
        entry = conn.entries[0] if conn.entries else None
        conn.search(
            directory.base_dn,
            f"(&(objectClass=groupOfNames)(member={escape_filter_chars(dn)}))",
            SUBTREE,
            attributes=["cn"],
        )
        groups: list[str] = []
        for group in conn.entries:
            groups += [group.entry_dn, *[str(cn) for cn in group["cn"].values]]
        return LdapIdentity(
            dn=(entry.entry_dn if entry else dn),
            email=_first(entry, "mail") if entry else None,
            display_name=(_first(entry, "displayName") or _first(entry, "cn")) if entry else None,
            groups=tuple(groups),
        )
    except LDAPException as error:
        if isinstance(error, LDAPResponseTimeoutError) or "timed out" in str(error):
            raise EgressTimeout(f"the directory did not answer within {timeout:g} s") from error
        raise EgressUnreachable(f"the directory failed ({type(error).__name__})") from error
    finally:
        conn.unbind()


async def authenticate(
    directory: Directory,
    username: str,
    password: str,
    *,
    policy: EgressPolicy,
    seconds: float,
) -> LdapIdentity | None:
    """Judge the directory's address (raises `EgressRefused`), then bind there; each network
    operation may take `seconds`."""
    target = await policy.target(directory.server_url, schemes=SCHEMES)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _threads, bind_and_read, directory, target, username, password, seconds
    )


def mapped_role(directory: Directory, identity: LdapIdentity) -> str | None:
    """The highest role any of the user's groups maps to, else the default (maybe none)."""
    roles = [role for group, role in directory.group_role_map.items() if group in identity.groups]
    if roles:
        return max(roles, key=ROLE_RANK.__getitem__)
    return directory.default_role
