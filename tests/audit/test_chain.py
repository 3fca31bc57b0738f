"""The audit chain verifies, and stops verifying when the owner edits or removes an event."""

from __future__ import annotations

import psycopg

from tenantry.db.urls import libpq_dsn
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantUpdate
from tests.audit.conftest import verify


def as_owner(stack, tenant, statement: str) -> None:
    """Tamper the way only the table owner can: with the append-only trigger switched off."""
    with psycopg.connect(libpq_dsn(stack.admin_url)) as conn:
        conn.execute("SET ROLE tenantry_owner")
        conn.execute("SELECT set_config('tenantry.tenant_id', %s, true)", [str(tenant.id)])
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        conn.execute(statement, [tenant.id])
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


async def test_the_chain_verifies(db, audited):
    report = await verify(db, audited)
    assert (report.ok, report.events) == (True, 4)


async def test_an_edited_event_is_detected(db, stack, audited):
    as_owner(
        stack, audited, "UPDATE audit_events SET actor = 'forged' WHERE tenant_id = %s AND seq = 2"
    )
    report = await verify(db, audited)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, 2, "the event was altered")


async def test_a_deleted_event_is_detected(db, stack, audited):
    as_owner(stack, audited, "DELETE FROM audit_events WHERE tenant_id = %s AND seq = 2")
    report = await verify(db, audited)
    assert (report.ok, report.first_bad_seq) == (False, 2)


async def test_removing_the_newest_event_is_detected(db, stack, audited):
    as_owner(stack, audited, "DELETE FROM audit_events WHERE tenant_id = %s AND seq = 4")
    report = await verify(db, audited)
    assert (report.ok, report.reason) == (False, "the newest events were removed")


def test_cli_verify_fails_on_a_broken_chain(stack, audited):
    from typer.testing import CliRunner

    from tenantry.cli.main import app

    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify", audited.slug]).exit_code == 0
    as_owner(
        stack, audited, "UPDATE audit_events SET after = '{}' WHERE tenant_id = %s AND seq = 3"
    )
    broken = runner.invoke(app, ["audit", "verify", audited.slug])
    assert broken.exit_code == 1
    assert '"first_bad_seq": 3' in broken.stdout


async def test_concurrent_writers_keep_one_chain(db, make_tenant):
    import asyncio

    tenant = await make_tenant()

    async def rename(i: int):
        async with db.control() as session:
            await tenants.update(
                session, slug=tenant.slug, data=TenantUpdate(name=f"Name {i}"), actor="t"
            )

    await asyncio.gather(*(rename(i) for i in range(10)))
    report = await verify(db, tenant)
    assert (report.ok, report.events) == (True, 11)
