"""The egress policy: a host is resolved once, every address it resolves to is judged, and the
caller connects to the address that was judged (never to a second resolution of the name).

Only globally routable addresses pass (see `addresses`), unless the operator's allow-list
(`TENANTRY_EGRESS_ALLOWLIST`) names the host or a network holding the address: an on-premise
ERP or directory on a private network, a local Ollama.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tenantry.egress.addresses import Address, refusal, unwrapped

Resolver = Callable[[str, int], Awaitable[list[str]]]
DEFAULT_PORTS = {"http": 80, "https": 443, "ldap": 389, "ldaps": 636}
RESOLVE_TIMEOUT_SECONDS = 5.0


class EgressError(Exception):
    """An outbound call that was not made, or not finished, for a reason of this policy."""


class EgressRefused(EgressError):
    """The target is not one this platform may reach."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [info[4][0] for info in infos]


@dataclass(frozen=True)
class Target:
    """Where to connect: `address` was judged; `host` is what TLS and the Host header name."""

    scheme: str
    host: str
    port: int
    address: str


class EgressPolicy:
    def __init__(
        self,
        allowlist: tuple[str, ...] = (),
        *,
        resolver: Resolver | None = None,
        trusted_hosts: tuple[str, ...] = (),
    ) -> None:
        self.hosts = {
            entry.lower() for entry in (*allowlist, *trusted_hosts) if not _network(entry)
        }
        self.networks = [net for entry in allowlist if (net := _network(entry)) is not None]
        self.resolver = resolver or system_resolver

    def trusting(self, *hosts: str) -> EgressPolicy:
        """The same policy, with the operator's own configured hosts also allowed."""
        policy = EgressPolicy(resolver=self.resolver)
        policy.hosts = self.hosts | {h.lower() for h in hosts if h}
        policy.networks = self.networks
        return policy

    def lists(self, host: str) -> bool:
        """Whether the allow-list itself names `host` (by name, or as an address it covers)."""
        literal = _literal(host)
        if literal is not None:
            return self.allowed(host, literal)
        return host.lower() in self.hosts

    def allowed(self, host: str, address: Address) -> bool:
        if host.lower() in self.hosts:
            return True
        plain = unwrapped(address)
        return any(plain.version == n.version and plain in n for n in self.networks)

    def judge(self, host: str, address: Address) -> None:
        if self.allowed(host, address):
            return
        why = refusal(address)
        if why is not None:
            raise EgressRefused(f"{host} resolves to {why}; not on the egress allow-list")

    async def target(self, url: str, *, schemes: tuple[str, ...]) -> Target:
        """Resolve the URL's host once and judge every address; the first one is the target."""
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            raise EgressRefused(f"the URL must be {' or '.join(schemes)} with a host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as error:
            raise EgressRefused("the URL's port is not a number from 0 to 65535") from error
        return await self.resolve(parts.scheme, parts.hostname, port)

    async def resolve(self, scheme: str, host: str, port: int) -> Target:
        literal = _literal(host)
        if literal is not None:
            self.judge(host, literal)
            return Target(scheme, host, port, str(literal))
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                answers = await self.resolver(host, port)
        except (OSError, TimeoutError, UnicodeError) as error:  # UnicodeError: not IDNA-encodable
            raise EgressRefused(f"the host {host} does not resolve") from error
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        if not addresses:
            raise EgressRefused(f"the host {host} does not resolve")
        for address in addresses:  # every answer: any of them could be the one used
            self.judge(host, address)
        return Target(scheme, host, port, str(addresses[0]))


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _network(entry: str):
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
