"""Where webhooks may go: public addresses only, unless the operator's allow-list names the host
or its network (on-premise ERP and MES systems live on private networks)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from tenantry.errors import ValidationFailed


class ForbiddenTarget(ValueError):
    pass


def _allowed(host: str, address: ipaddress._BaseAddress, allowlist: tuple[str, ...]) -> bool:
    for entry in allowlist:
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _public(address: ipaddress._BaseAddress) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def check_target(url: str, allowlist: tuple[str, ...]) -> None:
    """Refuse a URL whose host resolves to a private, loopback or otherwise internal address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenTarget("the URL must be http(s) with a host")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ForbiddenTarget(f"the host {host} does not resolve") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not _public(address) and not _allowed(host, address, allowlist):
            raise ForbiddenTarget(
                f"{host} resolves to {address}, a private or loopback address not on the allow-list"
            )


async def validate_url(url: str, allowlist: tuple[str, ...]) -> None:
    try:
        await check_target(url, allowlist)
    except ForbiddenTarget as error:
        raise ValidationFailed(
            f"The webhook URL is not allowed: {error}.",
            code="forbidden-webhook-target",
            errors=[{"field": "body.url", "message": str(error)}],
        ) from None
