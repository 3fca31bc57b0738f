"""`tenantry users create …` and `tenantry operators create …`: first accounts from the shell."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tenantry.cli.common import cli_actor, emit, parse, run_with_db
from tenantry.cli.tenant_scope import tenant_scope
from tenantry.identity import bootstrap, operators
from tenantry.identity import users as users_service
from tenantry.identity.schemas import OperatorCreate, OperatorOut, UserCreate, UserOut

users = typer.Typer(help="Manage a tenant's users.", no_args_is_help=True)
operators_app = typer.Typer(help="Manage platform operators.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users.command("create")
def create_user(
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")],
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="owner, admin, member or viewer.")] = "member",
    display_name: Annotated[str | None, typer.Option()] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user in TENANT (an operator's way to create a tenant's first owner)."""
    data = parse(
        UserCreate,
        email=email,
        role=role,
        display_name=display_name,
        password=read_password(password_stdin),
    )

    async def work(db, stack):
        async with tenant_scope(db, tenant) as (row, session):
            user = await users_service.create(
                session, tenant_id=row.id, data=data, actor=cli_actor(), actor_role=None
            )
            return UserOut.model_validate(user)

    emit(run_with_db(work))


@operators_app.command("create")
def create_operator(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a platform operator."""
    data = parse(OperatorCreate, email=email, name=name, password=read_password(password_stdin))

    async def work(db, stack):
        async with db.control() as session:
            return OperatorOut.model_validate(await operators.create(session, data=data))

    emit(run_with_db(work))


@operators_app.command("bootstrap-token")
def bootstrap_token(
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new token (the old one stops working).")
    ] = False,
) -> None:
    """Where the operator bootstrap token is and until when it works (never the token itself);
    --rotate writes a new one to TENANTRY_HOME/bootstrap_token, while no operator exists."""

    async def work(db, stack):
        async with db.control() as session:
            if rotate:
                return await bootstrap.rotate(session, home=stack.settings.home)
            return await bootstrap.describe(session, home=stack.settings.home)

    token = run_with_db(work)
    emit(
        {
            "state": token.state,
            "path": str(token.path) if token.path else None,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    )
