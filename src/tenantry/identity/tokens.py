"""Opaque secrets: a recognisable prefix, stored only as SHA-256 digests.

SHA-256 (not a password hash) fits because these are 256-bit random values, not guessable words.
Tenant-bound secrets (API keys, refresh tokens) carry their tenant's id in the clear: it is an
identifier, not a secret, and it lets the server set the tenant before looking the secret up under
row-level security.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

OPERATOR_PREFIX = "tnop_"
API_KEY_PREFIX = "tnry_"
REFRESH_PREFIX = "tnrt_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


@dataclass(frozen=True)
class TenantSecret:
    tenant_id: uuid.UUID
    lookup: str
    secret: str


def new_tenant_secret(prefix: str, tenant_id: uuid.UUID) -> tuple[str, str]:
    """Return (the full secret to hand out once, its lookup id)."""
    lookup = secrets.token_hex(4)
    return f"{prefix}{tenant_id.hex}_{lookup}_{secrets.token_urlsafe(32)}", lookup


def parse_tenant_secret(prefix: str, value: str) -> TenantSecret | None:
    if not value.startswith(prefix):
        return None
    parts = value[len(prefix) :].split("_", 2)
    if len(parts) != 3 or len(parts[0]) != 32 or len(parts[1]) != 8:
        return None
    try:
        tenant_id = uuid.UUID(hex=parts[0])
    except ValueError:
        return None
    return TenantSecret(tenant_id, parts[1], value)
