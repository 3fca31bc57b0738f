"""Opaque secrets: generated with a recognisable prefix, stored only as SHA-256 digests.

SHA-256 (not a password hash) fits because these are 256-bit random values, not guessable words.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

OPERATOR_PREFIX = "tnop_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
