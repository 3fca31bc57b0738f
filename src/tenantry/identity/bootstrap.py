"""The operator bootstrap token: the way in for the first operator, and nothing after that.

A generated token is written to `TENANTRY_HOME/bootstrap_token`, readable by its owner only
(0600), and never printed: the banner names the file. It works for 24 hours, and only until the
first operator exists; `tenantry operators bootstrap-token --rotate` makes a new one while no
operator exists. A token set by TENANTRY_BOOTSTRAP_TOKEN (tests, automation) is the deployment's
own secret: it is stored as a digest, never written to disk, and honoured until the first operator
exists, without the 24-hour limit (whoever set it can unset it).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.errors import Conflict
from tenantry.identity.models import Operator, OperatorToken
from tenantry.identity.tokens import OPERATOR_PREFIX, digest, new_secret

NAME = "bootstrap"
FILE_NAME = "bootstrap_token"
LIFETIME = timedelta(hours=24)

State = Literal["written", "kept", "given", "expired", "closed"]


class BootstrapClosed(Conflict):
    code, title = "bootstrap-closed", "Operators exist"


@dataclass(frozen=True)
class Bootstrap:
    """What a start did with the bootstrap token, for the banner."""

    first: bool  # the platform's very first start
    state: State
    path: Path | None = None  # where a generated token is
    expires_at: datetime | None = None


def token_path(home: Path) -> Path:
    return Path(home) / FILE_NAME


async def operators_exist(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(exists().where(Operator.id.is_not(None)))))


async def provision(session: AsyncSession, *, given: str | None, home: Path) -> Bootstrap:
    """At every start: close the token once operators exist, keep or store one otherwise."""
    row = await _row(session)
    first = row is None
    path = token_path(home)
    if await operators_exist(session):
        await close(session)
        _remove(path)
        return Bootstrap(first, "closed")
    if given:
        _remove(path)  # a generated token of an earlier start stops working now
        if row is None:
            session.add(OperatorToken(name=NAME, token_hash=digest(given)))
        elif row.token_hash != digest(given) or row.revoked_at or row.expires_at:
            row.token_hash, row.revoked_at, row.expires_at = digest(given), None, None
        return Bootstrap(first, "given")
    if row is None:
        expires_at = await _issue(session, None, path)
        return Bootstrap(first, "written", path, expires_at)
    if usable(row, utcnow()) and (row.expires_at is None or path.exists()):
        return Bootstrap(first, "kept", path if row.expires_at else None, row.expires_at)
    return Bootstrap(first, "expired")


async def describe(session: AsyncSession, *, home: Path) -> Bootstrap:
    """The token's state now, changing nothing."""
    row = await session.scalar(select(OperatorToken).where(OperatorToken.name == NAME))
    path = token_path(home)
    if await operators_exist(session):
        return Bootstrap(False, "closed")
    if row is None or not usable(row, utcnow()):
        return Bootstrap(row is None, "expired")
    if row.expires_at is None:
        return Bootstrap(False, "given")
    return Bootstrap(False, "kept", path if path.exists() else None, row.expires_at)


async def rotate(session: AsyncSession, *, home: Path) -> Bootstrap:
    """A new generated token in place of the old one, while no operator exists."""
    if await operators_exist(session):
        raise BootstrapClosed(
            "Operators exist, so the bootstrap token is closed: an operator creates operators "
            "(POST /v1/admin/operators, or `tenantry operators create`)."
        )
    path = token_path(home)
    expires_at = await _issue(session, await _row(session), path)
    return Bootstrap(False, "written", path, expires_at)


async def close(session: AsyncSession) -> None:
    """The first operator exists: the bootstrap token never works again."""
    await session.execute(
        update(OperatorToken)
        .where(OperatorToken.name == NAME, OperatorToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def discard_file(home: Path) -> None:
    """After the first operator was created: the spent token's file goes too."""
    _remove(token_path(home))


def usable(row: OperatorToken, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


async def _row(session: AsyncSession) -> OperatorToken | None:
    return await session.scalar(
        select(OperatorToken).where(OperatorToken.name == NAME).with_for_update()
    )


async def _issue(session: AsyncSession, row: OperatorToken | None, path: Path) -> datetime:
    token = new_secret(OPERATOR_PREFIX)
    expires_at = utcnow() + LIFETIME
    if row is None:
        session.add(OperatorToken(name=NAME, token_hash=digest(token), expires_at=expires_at))
    else:
        row.token_hash, row.revoked_at, row.expires_at = digest(token), None, expires_at
    await session.flush()
    _write_private(path, token)  # before the commit: a failed commit leaves a dead token only
    return expires_at


def _write_private(path: Path, token: str) -> None:
    """Replace `path` with `token`, readable and writable by this user only, never wider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    _remove(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
