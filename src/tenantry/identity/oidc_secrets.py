"""A connection's client secret at rest: AES-GCM under a key the database never holds, bound to
its tenant (a sealed secret copied into another tenant's row does not open)."""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


def secrets_key(material: bytes | str) -> bytes:
    """The sealing key, derived from the platform key (`TENANTRY_PLATFORM_KEY`) for this one
    purpose: rotating the token-signing secret must not lose every connection's secret."""
    raw = material.encode() if isinstance(material, str) else material
    return hashlib.sha256(b"tenantry-oidc-client-secrets\0" + raw).digest()


def seal(key: bytes, tenant_id: uuid.UUID, secret: str) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode(), tenant_id.bytes)


def unseal(key: bytes, tenant_id: uuid.UUID, sealed: bytes) -> str:
    return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], tenant_id.bytes).decode()
