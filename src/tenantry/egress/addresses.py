"""Which IP addresses an outbound connection may reach: globally routable ones only.

`ipaddress`'s `is_global` is the base, but it is not enough on its own: addresses that carry an
IPv4 address inside an IPv6 one (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4, Teredo) are
judged by the address they carry, and ranges that some Python versions call global although no
one should reach them from here (shared address space, IETF protocol assignments, benchmarking,
multicast, 6to4 relays) and the cloud metadata services are refused by name.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address

# Refused whatever `is_global` says in this Python (3.11 calls 192.0.0.8 and 239.1.1.1 global).
REFUSED_NETWORKS: tuple[tuple[IPv4Network | IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

# The instance metadata services of the large clouds (some sit in otherwise public space).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::123",
    )
)

IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Forms that reach their IPv4 address only through a tunnel or translator nobody should rely on.
DEPRECATED_FORMS = frozenset({"Teredo", "IPv4-compatible", "IPv4-translated"})


def embedded_ipv4(address: IPv6Address) -> tuple[str, IPv4Address] | None:
    """The IPv4 address an IPv6 one carries, and the form that carries it, if any."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address.teredo is not None:
        return "Teredo", address.teredo[1]
    low = IPv4Address(int(address) & 0xFFFFFFFF)
    if address in NAT64:
        return "NAT64", low
    if address in SIIT:
        return "IPv4-translated", low
    if address in IPV4_COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", low
    return None


def refusal(address: Address) -> str | None:
    """Why `address` may not be reached (None: it may): judged on what it carries, too."""
    if isinstance(address, IPv6Address):
        if address.scope_id:
            return f"{address} has a zone (link-local)"
        inner = embedded_ipv4(address)
        if inner is not None:
            form, ipv4 = inner
            if form in DEPRECATED_FORMS:
                return f"{address} is a {form} address (for {ipv4}), a form no one routes"
            why = refusal(ipv4)
            return f"{address} is {form} for {ipv4}, {why}" if why else None
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata service"
    for network, reason in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{address} is {reason} ({network})"
    if not address.is_global:
        return f"{address} is not globally routable"
    return None


def unwrapped(address: Address) -> Address:
    """The address to compare with an allow-list: IPv4 when an IPv6 form only carries one."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
