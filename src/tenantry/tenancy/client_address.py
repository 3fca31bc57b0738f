"""The client's address: the peer's, unless the peer is a proxy the operator trusts
(`TENANTRY_TRUSTED_PROXIES`), in which case X-Forwarded-For says who stood before it.

The header is read from the right: each hop a trusted proxy appended is skipped, and the first
address no trusted proxy stands for is the client. Anything to its left was written by the
client itself and is never believed. uvicorn is given the same list (`forwarded_allow_ips`),
so the peer it reports may already be the client; reading it again here changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        entries = [e.strip() for e in entries if e.strip()]
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries if e != "*"]

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, address: str) -> bool:
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer

    def uvicorn_setting(self) -> str:
        """`forwarded_allow_ips` for uvicorn: the same list; an empty string trusts nobody."""
        return "*" if self.everyone else ",".join(str(n) for n in self.networks)


def client_address(connection: HTTPConnection) -> str:
    peer = connection.client.host if connection.client else "-"
    proxies: TrustedProxies | None = getattr(connection.app.state, "trusted_proxies", None)
    if not proxies:
        return peer
    return proxies.client(peer, connection.headers.get("x-forwarded-for"))
