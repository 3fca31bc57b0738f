"""Data keys: created on first use, wrapped by the platform key, destroyed with the tenant.

The platform key (`TENANTRY_PLATFORM_KEY`, or one generated once in `home` outside production)
never reaches the database; a data key is stored only wrapped, bound to its tenant's id, so a
wrapped key copied to another tenant's row does not unwrap.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from tenantry.db.session import Database
from tenantry.keys.models import TenantKey
from tenantry.settings import Settings
from tenantry.tenants.models import Tenant

NONCE = 12
CACHE_SECONDS = 30.0  # how long a process may keep a key after its tenant was deleted elsewhere
LIVE = ("active", "suspended")


class KeyDestroyed(Exception):
    """The tenant's data key is gone (the tenant was deleted): its payloads stay unreadable."""


def platform_key(settings: Settings) -> bytes:
    """32 bytes derived from the configured key, or from one generated once in `home`."""
    if settings.platform_key is not None:
        secret = settings.platform_key.get_secret_value()
    else:
        path = Path(settings.home) / "platform_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process of the stack wrote it first
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
        secret = path.read_text().strip()
    return hashlib.sha256(b"tenantry-platform-key\0" + secret.encode()).digest()


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, *, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], aad)


def derived_key(kek: bytes, purpose: str) -> bytes:
    """A key of the platform's own for one purpose (stored idempotent answers, say)."""
    return hashlib.sha256(kek + b"\0" + purpose.encode()).digest()


class TenantKeys:
    """Loads, creates and forgets data keys; one per process, shared by every Temporal client."""

    def __init__(self, db: Database, kek: bytes) -> None:
        self.db = db
        self.kek = kek
        self._keys: dict[uuid.UUID, tuple[bytes, float]] = {}
        self._slugs: dict[str, tuple[uuid.UUID | None, float]] = {}

    async def tenant_of(self, slug: str) -> uuid.UUID | None:
        """The id of the tenant a workflow id names; None when no tenant has that slug."""
        cached = self._slugs.get(slug)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        async with self.db.control() as session:
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
        self._slugs[slug] = (tenant_id, time.monotonic())
        return tenant_id

    async def key(self, tenant_id: uuid.UUID, *, create: bool) -> bytes:
        cached = self._keys.get(tenant_id)
        if cached is not None and time.monotonic() - cached[1] < CACHE_SECONDS:
            return cached[0]
        async with self.db.tenant(tenant_id) as session:
            status = await session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
            if status not in LIVE:
                raise KeyDestroyed(f"tenant {tenant_id} is {status or 'unknown'}")
            wrapped = await session.scalar(
                select(TenantKey.wrapped).where(TenantKey.tenant_id == tenant_id)
            )
            if wrapped is None:
                if not create:
                    raise KeyDestroyed(f"tenant {tenant_id} has no data key")
                wrapped = await self._create(session, tenant_id)
        try:
            key = unseal(self.kek, wrapped, aad=tenant_id.bytes)
        except InvalidTag as error:
            raise KeyDestroyed(f"the data key of {tenant_id} does not unwrap") from error
        self._keys[tenant_id] = (key, time.monotonic())
        return key

    async def _create(self, session, tenant_id: uuid.UUID) -> bytes:
        wrapped = seal(self.kek, AESGCM.generate_key(bit_length=256), aad=tenant_id.bytes)
        await session.execute(
            insert(TenantKey)
            .values(tenant_id=tenant_id, wrapped=wrapped)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        # Another process may have won the race: the stored key is the key.
        return await session.scalar(
            select(TenantKey.wrapped).where(TenantKey.tenant_id == tenant_id)
        )

    def forget(self, tenant_id: uuid.UUID) -> None:
        self._keys.pop(tenant_id, None)
        self._slugs = {s: v for s, v in self._slugs.items() if v[0] != tenant_id}


def fingerprint(key: bytes) -> str:
    """A short, non-reversible name of a key, for logs and tests."""
    return base64.urlsafe_b64encode(hashlib.sha256(key).digest()[:9]).decode()
