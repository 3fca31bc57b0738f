"""The audit log cannot be rewritten with the application's credentials, and a rewrite by someone
past them (the owner, a superuser) is caught by the signed anchors.

The attacks of the security review, as `tenantry_app` over a real connection: truncate the tail
under the purge setting and rewind the head; delete an event and slip a forged one in with a
recomputed hash. Each is refused by the database, and `tenantry audit verify` still answers ok."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors
from structlog.testing import capture_logs

from tenantry.audit import anchors
from tenantry.audit.chain import event_digest
from tenantry.db.urls import libpq_dsn
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantUpdate
from tests.audit.conftest import cli_verify, verify


def as_app_in_tenant(conn, tenant, statement: str, params=()) -> type[Exception] | None:
    """`statement` in a transaction of its own, with the tenant (and the purge setting) set:
    the error it raised, or None."""
    try:
        with conn.transaction():
            conn.execute(
                "SELECT set_config('tenantry.tenant_id', %s, true), "
                "set_config('tenantry.purging', %s, true)",
                [str(tenant.id)] * 2,
            )
            conn.execute(statement, params)
    except psycopg.Error as error:
        return type(error)
    return None


def owner_tampers(stack, tenant, *statements: tuple[str, list]) -> None:
    """What only the table's owner (or a superuser) can do: with every trigger switched off."""
    with psycopg.connect(libpq_dsn(stack.admin_url)) as conn:
        conn.execute("SET ROLE tenantry_owner")
        conn.execute("SELECT set_config('tenantry.tenant_id', %s, true)", [str(tenant.id)])
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        for statement, params in statements:
            conn.execute(statement, params)
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


def events(admin_sql, tenant) -> list[tuple[int, str]]:
    return admin_sql.execute(
        "SELECT seq, hash FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant.id]
    ).fetchall()


async def test_the_application_role_cannot_truncate_the_log_nor_rewind_its_head(
    audited, as_app, admin_sql
):
    before = events(admin_sql, audited)
    hash_of_2 = before[1][1]
    attacks = {
        "truncate the tail": (
            "DELETE FROM audit_events WHERE tenant_id = %s AND seq > 2",
            [audited.id],
        ),
        "rewind the head": (
            "UPDATE audit_heads SET seq = 2, hash = %s WHERE tenant_id = %s",
            [hash_of_2, audited.id],
        ),
        "drop the head": ("DELETE FROM audit_heads WHERE tenant_id = %s", [audited.id]),
        "upsert a head": (
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (%s, 2, %s) "
            "ON CONFLICT (tenant_id) DO UPDATE SET seq = 2",
            [audited.id, hash_of_2],
        ),
        "edit an event": (
            "UPDATE audit_events SET actor = 'forged' WHERE tenant_id = %s",
            [audited.id],
        ),
        "truncate the table": ("TRUNCATE audit_events", []),
        "switch the chain off": ("ALTER TABLE audit_events DISABLE TRIGGER audit_events_chain", []),
        "purge as the owner does": ("SELECT audit_purge(%s)", [audited.id]),
        "read the signing key": ("SELECT key FROM audit_signing_keys", []),
        "forge an anchor": (
            "INSERT INTO audit_anchors (tenant, seq, hash, signed_at, key_id, signature) "
            "VALUES (%s, 2, %s, now(), 1, 'x')",
            [audited.id, hash_of_2],
        ),
        "drop the anchors": ("DELETE FROM audit_anchors WHERE tenant = %s", [audited.id]),
    }
    refused = {
        name: as_app_in_tenant(as_app, audited, statement, params)
        for name, (statement, params) in attacks.items()
    }
    assert refused == {name: errors.InsufficientPrivilege for name in attacks}
    # Even with the tenant marked deleted (the application may write `tenants`), the purge is
    # the owner's alone.
    marked = as_app_in_tenant(
        as_app, audited, "UPDATE tenants SET status = 'deleted' WHERE id = %s", [audited.id]
    )
    assert marked is None
    purge = as_app_in_tenant(as_app, audited, "SELECT audit_purge(%s)", [audited.id])
    assert purge is errors.InsufficientPrivilege
    admin_sql.execute("UPDATE tenants SET status = 'active' WHERE id = %s", [audited.id])

    assert events(admin_sql, audited) == before
    code, report = await asyncio.to_thread(cli_verify, audited.slug)
    assert (code, report["ok"], report["events"]) == (0, True, 4)


async def test_a_forged_event_cannot_be_slipped_into_the_chain(audited, as_app, admin_sql):
    before = events(admin_sql, audited)

    def forged(seq: int, prev_hash: str) -> tuple[str, list]:
        fields = {
            "tenant_id": str(audited.id),
            "seq": seq,
            "actor": "operator:nobody",
            "action": "tenant.updated",
            "target": f"tenant:{audited.slug}",
            "request_id": None,
            "before": None,
            "after": {"name": "Forged"},
        }
        occurred = datetime.now(UTC)
        digest = event_digest(prev_hash=prev_hash, occurred_at=occurred, **fields)
        return (
            "INSERT INTO audit_events (tenant_id, id, seq, occurred_at, actor, action, target, "
            "request_id, before, after, prev_hash, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, NULL, %s, %s, %s)",
            [
                audited.id,
                uuid.uuid4(),
                seq,
                occurred,
                fields["actor"],
                fields["action"],
                fields["target"],
                json.dumps(fields["after"]),
                prev_hash,
                digest,
            ],
        )

    # The review's second attack: delete event 2, insert a forged 2 with a recomputed hash.
    deleted = as_app_in_tenant(
        as_app, audited, "DELETE FROM audit_events WHERE tenant_id = %s AND seq = 2", [audited.id]
    )
    assert deleted is errors.InsufficientPrivilege
    replaced = as_app_in_tenant(as_app, audited, *forged(2, before[0][1]))
    assert replaced is errors.IntegrityConstraintViolation  # it does not follow the head
    # A forged tail that branches off event 2 does not follow the head (event 4).
    branch = as_app_in_tenant(as_app, audited, *forged(5, before[1][1]))
    assert branch is errors.IntegrityConstraintViolation
    skipped = as_app_in_tenant(as_app, audited, *forged(7, before[3][1]))
    assert skipped is errors.IntegrityConstraintViolation

    assert events(admin_sql, audited) == before
    code, report = await asyncio.to_thread(cli_verify, audited.slug)
    assert (code, report["ok"], report["events"]) == (0, True, 4)


async def test_a_truncation_past_the_applications_rights_is_caught_by_the_anchor(
    db, stack, audited, admin_sql
):
    assert (await verify(db, audited)).ok  # signs the head: seq 4
    hash_of_2 = events(admin_sql, audited)[1][1]
    owner_tampers(
        stack,
        audited,
        ("DELETE FROM audit_events WHERE tenant_id = %s AND seq > 2", [audited.id]),
        ("UPDATE audit_heads SET seq = 2, hash = %s WHERE tenant_id = %s", [hash_of_2, audited.id]),
    )
    report = await verify(db, audited)
    assert (report.ok, report.first_bad_seq, report.anchor_seq) == (False, 3, 4)
    assert "were removed" in report.reason
    code, shown = await asyncio.to_thread(cli_verify, audited.slug)
    assert code == 1 and shown["ok"] is False


async def test_a_forged_tail_with_recomputed_hashes_is_caught_by_the_anchor(
    db, stack, audited, admin_sql
):
    assert (await verify(db, audited)).ok  # signs the head: seq 4
    rows = admin_sql.execute(
        "SELECT seq, occurred_at, actor, action, target, request_id, before, after, prev_hash "
        "FROM audit_events WHERE tenant_id = %s AND seq >= 3 ORDER BY seq",
        [audited.id],
    ).fetchall()
    rewritten, prev_hash = [], rows[0][-1]
    for seq, occurred, actor, action, target, request_id, before, _, _ in rows:
        after = {"name": "History as the attacker tells it"}
        digest = event_digest(
            prev_hash=prev_hash,
            tenant_id=str(audited.id),
            seq=seq,
            occurred_at=occurred,
            actor=actor,
            action=action,
            target=target,
            request_id=request_id,
            before=before,
            after=after,
        )
        rewritten.append(
            (
                "UPDATE audit_events SET after = %s, prev_hash = %s, hash = %s "
                "WHERE tenant_id = %s AND seq = %s",
                [json.dumps(after), prev_hash, digest, audited.id, seq],
            )
        )
        prev_hash = digest
    owner_tampers(
        stack,
        audited,
        *rewritten,
        ("UPDATE audit_heads SET hash = %s WHERE tenant_id = %s", [prev_hash, audited.id]),
    )
    report = await verify(db, audited)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "rewritten" in report.reason


async def test_anchors_are_hmac_sha256_of_the_head_and_go_to_the_log(db, audited, admin_sql):
    with capture_logs() as logged:
        report = await verify(db, audited)
    assert report.ok and report.anchor_seq is None  # nothing was signed before this verify
    (entry,) = [e for e in logged if e["event"] == "audit anchor"]
    tenant, seq, head, signed_at, key_id, signature = admin_sql.execute(
        "SELECT tenant, seq, hash, signed_at, key_id, signature FROM audit_anchors "
        "WHERE tenant = %s ORDER BY id DESC LIMIT 1",
        [audited.id],
    ).fetchone()
    assert (entry["anchored_tenant"], entry["seq"], entry["signature"]) == (
        str(audited.id),
        4,
        signature,
    )
    assert head == events(admin_sql, audited)[-1][1]
    key = admin_sql.execute("SELECT key FROM audit_signing_keys WHERE id = %s", [key_id]).fetchone()
    stamp = signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    message = f"{tenant}|{seq}|{head}|{stamp}".encode()
    assert hmac.new(bytes(key[0]), message, hashlib.sha256).hexdigest() == signature

    again = await verify(db, audited)
    assert (again.ok, again.anchor_seq) == (True, 4)
    admin_sql.execute(
        "UPDATE audit_anchors SET signature = repeat('0', 64) "
        "WHERE id = (SELECT max(id) FROM audit_anchors WHERE tenant = %s)",
        [audited.id],
    )
    forged = await verify(db, audited)
    assert forged.ok is False and "forged" in forged.reason


async def test_periodic_anchoring_signs_only_the_heads_that_moved(db, audited, admin_sql):
    def signed() -> list[int]:
        return [
            row[0]
            for row in admin_sql.execute(
                "SELECT seq FROM audit_anchors WHERE tenant = %s ORDER BY id", [audited.id]
            ).fetchall()
        ]

    chore = anchors.AnchorMovedHeads(db, every_seconds=0)
    await chore()
    assert signed() == [4]
    await chore()
    assert signed() == [4]  # the head did not move
    async with db.control() as session:
        await tenants.update(session, slug=audited.slug, data=TenantUpdate(name="Four"), actor="t")
    await chore()
    assert signed() == [4, 5]
    hourly = anchors.AnchorMovedHeads(db, every_seconds=3600)
    assert await hourly() >= 0
    async with db.control() as session:
        await tenants.update(session, slug=audited.slug, data=TenantUpdate(name="Five"), actor="t")
    assert await hourly() == 0 and signed() == [4, 5]  # not due yet


async def test_a_deletion_signs_the_final_head_and_only_the_owner_purges_the_log(
    db, stack, audited, as_app, admin_sql
):
    await tenants.delete(db, slug=audited.slug, actor="test")
    final = events(admin_sql, audited)
    assert len(final) == 5  # and `tenant.deleting`
    latest = admin_sql.execute(
        "SELECT seq, hash FROM audit_anchors WHERE tenant = %s ORDER BY id DESC LIMIT 1",
        [audited.id],
    ).fetchone()
    assert latest == final[-1]
    assert (
        as_app_in_tenant(as_app, audited, "SELECT audit_purge(%s)", [audited.id])
        is errors.InsufficientPrivilege
    )
    assert anchors.purge_deleted(stack.admin_url, tenant_id=audited.id) == 5
    assert events(admin_sql, audited) == []
    kept = admin_sql.execute(
        "SELECT count(*) FROM audit_anchors WHERE tenant = %s", [audited.id]
    ).fetchone()[0]
    assert kept >= 1  # the platform's evidence outlives the tenant's rows


async def test_only_a_deleted_tenants_log_is_purged(stack, audited):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        anchors.purge_deleted(stack.admin_url, tenant_id=audited.id)
