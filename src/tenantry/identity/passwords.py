"""Password hashing (argon2id) and the password policy of seed 003, plus common-password refusal."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from tenantry.errors import ValidationFailed

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])
# Verified when the user does not exist, so that a miss costs what a wrong password costs.
DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")

RULES = (
    ("min_length", "at least 12 characters", lambda p: len(p) >= 12),
    ("uppercase", "an upper-case letter", lambda p: re.search(r"[A-Z]", p) is not None),
    ("lowercase", "a lower-case letter", lambda p: re.search(r"[a-z]", p) is not None),
    ("digit", "a digit", lambda p: re.search(r"\d", p) is not None),
)


def policy_violations(password: str) -> list[str]:
    failed = [f"{rule}: the password needs {text}" for rule, text, ok in RULES if not ok(password)]
    if not failed and (password.lower() in _COMMON or zxcvbn(password[:72])["score"] < 2):
        failed.append("common: the password is too common or too easy to guess")
    return failed


def check_policy(password: str, *, field: str = "body.password") -> None:
    failed = policy_violations(password)
    if failed:
        raise ValidationFailed(
            "The password does not meet the policy: " + "; ".join(failed) + ".",
            code="weak-password",
            errors=[{"field": field, "message": message} for message in failed],
        )


# argon2 is built to be slow (tens of milliseconds): it runs in a thread, never on the event loop.
async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
