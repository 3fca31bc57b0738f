"""Audit tests: a tenant with a few audit events, the application role's own connection, and the
two ways to verify a chain."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from tenantry.audit import service as audit
from tenantry.cli.main import app as cli
from tenantry.db.urls import libpq_dsn
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantUpdate
from tests.conftest import cli_json


@pytest.fixture
async def audited(db, make_tenant):
    tenant = await make_tenant()
    for name in ("One", "Two", "Three"):
        async with db.control() as session:
            await tenants.update(session, slug=tenant.slug, data=TenantUpdate(name=name), actor="t")
    return tenant  # four events: created, then three renames


@pytest.fixture
def as_app(stack):
    """The application role's own credentials, as someone who stole them would connect."""
    with psycopg.connect(libpq_dsn(stack.app_url), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "tenantry_app"
        yield conn


async def verify(db, tenant):
    async with db.tenant(tenant.id) as session:
        return await audit.verify(session, tenant_id=tenant.id)


def cli_verify(slug: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, ["audit", "verify", slug])
    return result.exit_code, cli_json(result.stdout)
