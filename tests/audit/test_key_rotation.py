"""Rotating the key that signs audit anchors: anchors signed before still verify under their own
key version, new ones use the new version, and a forged anchor still fails."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC

from psycopg import errors
from structlog.testing import capture_logs
from typer.testing import CliRunner

from tenantry.audit import anchors
from tenantry.cli.main import app as cli
from tenantry.tenants import service as tenants
from tenantry.tenants.schemas import TenantUpdate
from tests.audit.conftest import cli_verify, verify
from tests.conftest import cli_json


def newest_anchor(admin_sql, tenant) -> tuple:
    return admin_sql.execute(
        "SELECT id, tenant, seq, hash, signed_at, key_id, signature FROM audit_anchors "
        "WHERE tenant = %s ORDER BY id DESC LIMIT 1",
        [tenant.id],
    ).fetchone()


def signature_under(admin_sql, key_id: int, anchor: tuple) -> str:
    _, tenant, seq, head, signed_at, _, _ = anchor
    key = admin_sql.execute("SELECT key FROM audit_signing_keys WHERE id = %s", [key_id]).fetchone()
    stamp = signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    message = f"{tenant}|{seq}|{head}|{stamp}".encode()
    return hmac.new(bytes(key[0]), message, hashlib.sha256).hexdigest()


async def test_verify_holds_across_a_rotation_and_a_forged_anchor_still_fails(
    db, audited, admin_sql
):
    assert (await verify(db, audited)).ok  # signs the head under the key in use now
    old = newest_anchor(admin_sql, audited)

    rotated = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    version = cli_json(rotated.stdout)
    assert version["previous_key_id"] >= old[5] and version["key_id"] > version["previous_key_id"]

    # The anchor signed before the rotation is the newest one still: it verifies under its key.
    report = await verify(db, audited)
    assert (report.ok, report.anchor_seq) == (True, 4)
    new = newest_anchor(admin_sql, audited)
    assert new[0] > old[0] and (old[5], new[5]) == (old[5], version["key_id"])
    assert new[6] == signature_under(admin_sql, version["key_id"], new)
    async with db.control() as session:
        await tenants.update(session, slug=audited.slug, data=TenantUpdate(name="Four"), actor="t")
    code, answer = await asyncio.to_thread(cli_verify, audited.slug)
    assert (code, answer["ok"]) == (0, True) and answer["anchor_seq"] >= 4

    # Signed with the old key but naming the new one: forged, as is any other signature.
    newest = newest_anchor(admin_sql, audited)
    assert newest[5] == version["key_id"] and newest[2] == 5
    admin_sql.execute(
        "UPDATE audit_anchors SET signature = %s WHERE id = %s",
        [signature_under(admin_sql, old[5], newest), newest[0]],
    )
    forged = await verify(db, audited)
    assert forged.ok is False and "forged" in forged.reason
    code, answer = await asyncio.to_thread(cli_verify, audited.slug)
    assert code == 1 and "forged" in answer["reason"]


async def test_rotations_at_once_each_add_one_version(stack, admin_sql, as_app):
    before = admin_sql.execute("SELECT max(id) FROM audit_signing_keys").fetchone()[0]
    with capture_logs() as logged:
        made = await asyncio.gather(
            *(asyncio.to_thread(anchors.rotate_key, stack.admin_url) for _ in range(4))
        )
    ids = sorted(v.key_id for v in made)
    entries = [e for e in logged if e["event"] == "audit signing key rotated"]
    assert sorted(e["key_id"] for e in entries) == ids
    assert all(set(e) == {"event", "log_level", "key_id", "previous_key_id"} for e in entries)
    assert len(set(ids)) == 4 and ids[0] > before
    # Serialised: each names the version it replaced, so together they form one line.
    assert sorted(v.previous_key_id for v in made) == [before, *ids[:-1]]
    # The application's role can neither read the keys nor add one.
    for statement in (
        "SELECT key FROM audit_signing_keys",
        "INSERT INTO audit_signing_keys (key) VALUES ('\\x00')",
    ):
        try:
            as_app.execute(statement)
        except errors.InsufficientPrivilege:
            continue
        raise AssertionError(f"the application role may: {statement}")
