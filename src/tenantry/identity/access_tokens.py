"""Access tokens: HS256 JWTs of `access_token_minutes`, naming subject, tenant, role and session."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt

from tenantry.db.base import utcnow
from tenantry.settings import Settings

ISSUER = "tenantry"
ALGORITHM = "HS256"


def signing_key(settings: Settings) -> str:
    """The configured key; outside production, one generated once and kept in `home`."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = Path(settings.home) / "jwt_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass(frozen=True)
class AccessClaims:
    kind: str  # "user" or "operator"
    subject_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: str | None
    session_id: uuid.UUID | None
    jti: uuid.UUID


def issue(
    key: str,
    *,
    kind: str,
    subject_id: uuid.UUID,
    minutes: int,
    tenant_id: uuid.UUID | None = None,
    role: str | None = None,
    session_id: uuid.UUID | None = None,
) -> str:
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "typ": "access",
        "kind": kind,
        "sub": str(subject_id),
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
    }
    if tenant_id is not None:
        claims["tenant"] = str(tenant_id)
    if role is not None:
        claims["role"] = role
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


def decode(key: str, token: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token; None for anything else."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "kind"]},
        )
        if claims.get("typ") != "access" or claims["kind"] not in ("user", "operator"):
            return None
        return AccessClaims(
            kind=claims["kind"],
            subject_id=uuid.UUID(claims["sub"]),
            tenant_id=uuid.UUID(claims["tenant"]) if "tenant" in claims else None,
            role=claims.get("role"),
            session_id=uuid.UUID(claims["sid"]) if "sid" in claims else None,
            jti=uuid.UUID(claims["jti"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError):
        return None


def expired(key: str, token: str) -> bool:
    """Whether a token `decode` refused is ours and valid but for its age: the client should
    refresh it rather than log in again. Only called on that refusal, off the hot path."""
    try:
        jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "kind"]},
        )
    except jwt.ExpiredSignatureError:
        return True
    except (jwt.PyJWTError, ValueError, KeyError):
        return False
    return False
