"""What every CLI command shares: the database, JSON output, and errors as clear messages."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from tenantry.db.retry import is_retryable
from tenantry.db.session import Database
from tenantry.errors import AppError, TransactionConflict
from tenantry.settings import get_settings
from tenantry.stack import Stack, start_database

T = TypeVar("T")


def cli_actor() -> str:
    return f"operator:cli:{getpass.getuser()}"


@contextmanager
def opened_stack():
    stack = start_database(get_settings())
    try:
        yield stack
    finally:
        stack.stop()


def run_with_db(work: Callable[[Database, Stack], Awaitable[T]]) -> T:
    """Run `work` against the database, turning expected errors into a message and exit code 1.

    A command whose transaction failed with a serialisation failure or a deadlock runs again
    under the database's retry policy; commands print only after `work` returns, and their earlier
    transactions are idempotent, so running one twice shows and leaves what one run would.
    """

    async def main(stack: Stack) -> T:
        db = stack.database()
        try:
            async for attempt in db.retrying():
                with attempt:
                    return await work(db, stack)
            raise AssertionError("unreachable: tenacity re-raises the last failure")
        finally:
            await db.dispose()

    try:
        with opened_stack() as stack:
            return asyncio.run(main(stack))
    except AppError as error:
        fail(f"{error.title}: {error.detail}")
    except Exception as error:
        if not is_retryable(error):
            raise
        conflict = TransactionConflict()
        fail(f"{conflict.title}: {conflict.detail}")
    raise AssertionError("unreachable")


def parse(model: type[BaseModel], *, keep_none: bool = False, **values: Any) -> Any:
    try:
        return model(**{k: v for k, v in values.items() if keep_none or v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()
        )
        fail(f"Invalid input: {problems}", code=2)


def fail(message: str, *, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def emit(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
