"""`tenantry cells …`: the databases tenants can be placed in."""

from __future__ import annotations

from typing import Annotated

import typer

from tenantry.cli.common import emit, fail, run_with_db
from tenantry.tenants import cells
from tenantry.tenants.schemas import CellOut

app = typer.Typer(
    help="Add and list cells (databases tenants are placed in).", no_args_is_help=True
)


@app.command()
def add(
    name: str,
    database: Annotated[
        str | None, typer.Option(help="A new database on the control plane's server.")
    ] = None,
    url_env: Annotated[
        str | None, typer.Option(help="The environment variable holding the cell's admin URL.")
    ] = None,
    silo: Annotated[
        bool,
        typer.Option(
            "--silo",
            help="A tenant's own placement: a tenant moved there gets its own task queue and "
            "worker (the default is a pool cell, on the shared workers).",
        ),
    ] = False,
) -> None:
    """Create and migrate the cell's database, then register it."""

    async def work(db, stack):
        location = cells.check(stack.settings, name=name, database=database, url_env=url_env)
        async with db.control() as session:
            if await cells.exists(session, name=name):
                fail(f"A cell named '{name}' is registered already.")
        cells.provision(stack.settings, stack.admin_url, location)
        async with db.control() as session:
            return await cells.register(
                session, name=name, location=location, kind=cells.SILO if silo else cells.POOL
            )

    emit(CellOut.model_validate(run_with_db(work)))


@app.command("list")
def list_() -> None:
    """The cells tenants can be placed in: the control plane's own database first, then the
    registered ones (as `GET /v1/admin/cells` lists them)."""

    async def work(db, stack):
        async with db.control() as session:
            return await cells.placements(session, stack.settings)

    emit([CellOut.model_validate(cell).model_dump(mode="json") for cell in run_with_db(work)])
