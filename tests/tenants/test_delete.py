"""Deleting a tenant purges every row it owns, in every tenant-owned table, and nothing else: the
application purges all but the audit log, which only the owner role may remove."""

from __future__ import annotations

from tenantry.audit import anchors
from tenantry.tenants import service
from tenantry.tenants.schemas import TenantUpdate


def rows_by_tenant(admin_sql, tenant_id) -> dict[str, int]:
    tables = [
        r[0]
        for r in admin_sql.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id'"
        ).fetchall()
    ]
    return {
        t: admin_sql.execute(
            f"SELECT count(*) FROM {t} WHERE tenant_id = %s", [tenant_id]
        ).fetchone()[0]
        for t in tables
    }


AUDIT = ("audit_events", "audit_heads")


async def test_delete_purges_the_tenant_and_only_it(db, stack, make_tenant, admin_sql):
    doomed, neighbour = await make_tenant(), await make_tenant()
    for tenant in (doomed, neighbour):
        async with db.control() as session:
            await service.update(
                session, slug=tenant.slug, data=TenantUpdate(name="Busy"), actor="test"
            )
    before_doomed = rows_by_tenant(admin_sql, doomed.id)
    before_neighbour = rows_by_tenant(admin_sql, neighbour.id)
    assert sum(before_doomed.values()) > 0

    tenant, purged = await service.delete(db, slug=doomed.slug, actor="test")

    assert tenant.status == "deleted"
    audit_log = before_doomed["audit_events"] + 1  # plus the `deleting` event
    assert sum(purged.values()) == sum(before_doomed.values()) - sum(
        before_doomed[t] for t in AUDIT
    )
    left = {t: n for t, n in rows_by_tenant(admin_sql, doomed.id).items() if n}
    assert left == {"audit_events": audit_log, "audit_heads": 1}
    assert anchors.purge_deleted(stack.admin_url, tenant_id=doomed.id) == audit_log
    assert sum(rows_by_tenant(admin_sql, doomed.id).values()) == 0
    assert rows_by_tenant(admin_sql, neighbour.id) == before_neighbour


async def test_an_interrupted_delete_is_finished_by_repeating_it(db, stack, make_tenant, admin_sql):
    tenant = await make_tenant()
    admin_sql.execute("UPDATE tenants SET status = 'deleting' WHERE id = %s", [tenant.id])
    finished, _ = await service.delete(db, slug=tenant.slug, actor="test")
    assert finished.status == "deleted"
    assert anchors.purge_deleted(stack.admin_url, tenant_id=tenant.id) == 1
    assert sum(rows_by_tenant(admin_sql, tenant.id).values()) == 0
