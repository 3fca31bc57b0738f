"""Backup, verify, restore and clone through the service, against the real database and store."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from tenantry.audit import service as audit
from tenantry.audit.models import AuditEvent
from tenantry.ops import service as ops
from tenantry.ops.archive import Archive
from tenantry.ops.export import export_tenant
from tenantry.ops.models import Backup
from tenantry.ops.restore import SchemaMismatch
from tenantry.ops.tables import DATA
from tenantry.ops.verify import verify
from tests.conftest import unique_slug
from tests.ops.conftest import data_rows, fetched, flip_byte, rewrite

FILLED = {
    "users",
    "refresh_tokens",
    "api_keys",
    "config_versions",
    "documents",
    "chunks",
    "incidents",
    "incident_events",
    "incident_counters",
    "webhook_endpoints",
    "webhook_deliveries",
}


async def test_backup_holds_every_table_and_verifies(filled, db, store, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    assert backup.status == "done" and backup.bytes > 0
    path = await fetched(store, backup.archive, tmp_path)
    report = verify(path, manifest_sha256=backup.manifest_sha256)
    assert report.ok, report.problems
    archive = Archive.open(path)
    rows = {t: e["rows"] for t, e in archive.tables.items()}
    assert all(rows[t] > 0 for t in FILLED), rows
    assert rows["chunks"] == 12
    assert set(rows) >= DATA and {"audit_events", "audit_heads"} <= set(rows)
    assert not {"outbox", "tenant_keys", "idempotency_keys"} & set(rows)
    assert archive.manifest["tenant"]["slug"] == tenant.slug
    async with db.tenant(tenant.id) as session:
        seq, _ = await audit.head(session, tenant_id=tenant.id)
        last = (
            await session.execute(
                text("SELECT action, target, after, prev_hash FROM audit_events WHERE seq = :s"),
                {"s": seq},
            )
        ).one()
    # The chain records the backup once it is taken: the archive holds the chain up to it.
    assert (last.action, last.target) == ("tenant.backed_up", f"backup:{backup.id}")
    assert last.after["manifest_sha256"] == backup.manifest_sha256
    assert archive.manifest["audit_head"] == {"seq": seq - 1, "hash": last.prev_hash}
    assert report.audit_events == seq - 1
    # The vectors are exported as PostgreSQL wrote them, not recomputed.
    chunk = next(archive.rows("chunks"))
    assert chunk["embedding"].startswith("[") and len(chunk["embedding"].split(",")) > 100


async def test_round_trip_export_clone_export_is_the_same_data(
    filled, db, store, settings, tmp_path
):
    tenant, _ = filled
    first = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, first.archive, tmp_path)
    slug = unique_slug("clone")
    record, mapping = await ops.clone(db, path=path, new_slug=slug, actor="test", settings=settings)
    assert record.mode == "clone" and record.slug == slug
    second = await ops.take_backup(db, store, slug=slug, actor="test")
    again = Archive.open(await fetched(store, second.archive, tmp_path))
    source = Archive.open(path)
    assert data_rows(source, mapping) == data_rows(again)
    # Every id was renumbered: no id of the source is left in the clone's rows.
    source_ids = set(mapping.ids) - {str(tenant.id)}
    clone_text = str(data_rows(again))
    assert source_ids and not any(old in clone_text for old in source_ids)
    # The clone's chain is its own: created, then cloned from the named archive.
    async with db.tenant(record.tenant) as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.tenant_id == record.tenant)
                .order_by(AuditEvent.seq)
            )
        ).all()
        chain = await audit.verify(session, tenant_id=record.tenant)
    assert actions == ["tenant.created", "tenant.cloned", "tenant.backed_up"] and chain.ok


async def test_restore_puts_back_the_archive_and_keeps_a_safety_copy(
    filled, db, store, admin_sql, tmp_path
):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    admin_sql.execute("DELETE FROM chunks WHERE tenant_id = %s", (tenant.id,))
    admin_sql.execute("UPDATE incidents SET title = 'changed' WHERE tenant_id = %s", (tenant.id,))
    record = await ops.restore(db, store, path=path, slug=tenant.slug, actor="test")
    now = tmp_path / "now.tar"
    await export_tenant(db, tenant=ops.source_of(tenant), into=now)
    assert data_rows(Archive.open(now)) == data_rows(Archive.open(path))
    async with db.control() as session:
        safety = await session.get(Backup, record.safety_backup)
    assert safety.kind == "safety" and safety.status == "done"
    safety_archive = Archive.open(await fetched(store, safety.archive, tmp_path))
    assert safety_archive.tables["chunks"]["rows"] == 0  # the state it replaced
    async with db.tenant(tenant.id) as session:
        last = await session.scalar(
            select(AuditEvent.action)
            .where(AuditEvent.tenant_id == tenant.id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
        assert (await audit.verify(session, tenant_id=tenant.id)).ok
    assert last == "tenant.restored"


async def test_a_restore_never_gives_an_incident_number_twice(
    filled, db, store, admin_sql, tmp_path
):
    """Incidents numbered after the archive was taken keep their numbers used: an incident's
    workflow is named by its number, and theirs may still run."""
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    counter = "SELECT last_number FROM incident_counters WHERE tenant_id = %s"
    archived = admin_sql.execute(counter, (tenant.id,)).fetchone()[0]
    admin_sql.execute(  # five incidents numbered since the backup
        "UPDATE incident_counters SET last_number = last_number + 5 WHERE tenant_id = %s",
        (tenant.id,),
    )
    await ops.restore(db, store, path=path, slug=tenant.slug, actor="test")
    assert admin_sql.execute(counter, (tenant.id,)).fetchone()[0] == archived + 5


async def test_restore_failing_half_way_changes_nothing(filled, db, store, admin_sql, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    admin_sql.execute(
        "UPDATE incidents SET title = 'after the backup' WHERE tenant_id = %s", (tenant.id,)
    )
    before = tmp_path / "before.tar"
    await export_tenant(db, tenant=ops.source_of(tenant), into=before)

    # Checksums right, one row of a late table wrong: the insert fails after the deletes and
    # the earlier tables' inserts ran.
    def no_title(row):
        return {**row, "title": None}

    broken = tmp_path / "broken.tar"
    rewrite(path, broken, "incidents", no_title)
    assert verify(broken).ok
    with pytest.raises(Exception, match="title"):
        await ops.restore(db, store, path=broken, slug=tenant.slug, actor="test")
    after = tmp_path / "after.tar"
    await export_tenant(db, tenant=ops.source_of(tenant), into=after)
    assert data_rows(Archive.open(after)) == data_rows(Archive.open(before))
    # The chain gained the safety backup's event alone (taken before the swap), no restore.
    head = Archive.open(before).manifest["audit_head"]
    gained = admin_sql.execute(
        "SELECT action, after ->> 'kind' FROM audit_events WHERE tenant_id = %s AND seq > %s",
        (tenant.id, head["seq"]),
    ).fetchall()
    assert gained == [("tenant.backed_up", "safety")]


async def test_a_changed_byte_is_named_and_the_archive_refused(filled, db, store, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    flip_byte(path, "tables/chunks.jsonl.gz", offset_in_member=200)
    report = verify(path)
    assert not report.ok
    assert any("tables/chunks.jsonl.gz" in p and "chunks" in p for p in report.problems)
    with pytest.raises(ops.ArchiveCorrupt, match=r"chunks\.jsonl\.gz"):
        await ops.restore(db, store, path=path, slug=tenant.slug, actor="test")


async def test_an_edited_audit_event_is_named(filled, db, store, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    edited = tmp_path / "edited.tar"

    def rename(row):
        return {**row, "actor": "someone else"} if row["seq"] == 2 else row

    rewrite(path, edited, "audit_events", rename)
    report = verify(edited)
    assert not report.ok and "audit event 2: the event was altered" in report.problems[0]


async def test_an_archive_of_another_revision_is_refused_naming_it(filled, db, store, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    path = await fetched(store, backup.archive, tmp_path)
    old = tmp_path / "old.tar"
    rewrite(path, old, "users", lambda row: row, revision="0004")
    assert verify(old).ok
    with pytest.raises(SchemaMismatch, match="revision 0004"):
        await ops.restore(db, store, path=old, slug=tenant.slug, actor="test")


async def test_backup_taken_while_the_tenant_writes_is_one_snapshot(filled, db, store, tmp_path):
    """Documents and their chunks are written together while the export runs: the archive holds
    each document with exactly its chunks, never one without the other."""
    tenant, _ = filled
    wrote = asyncio.Event()
    stop = asyncio.Event()

    async def writer():
        n = 0
        while not stop.is_set():
            async with db.tenant(tenant.id) as session:
                document_id = uuid.uuid4()
                await session.execute(
                    text(
                        "INSERT INTO documents (tenant_id, id, title, source_type, content_hash, "
                        "size_bytes, tags, metadata, status, chunk_count, created_by, created_at, "
                        "updated_at) VALUES (:t, :d, 'live', 'txt', :h, 0, '{}', '{}', 'ready', "
                        "2, 'test', now(), now())"
                    ),
                    {"t": tenant.id, "d": document_id, "h": uuid.uuid4().hex},
                )
                for ordinal in (0, 1):
                    await session.execute(
                        text(
                            "INSERT INTO chunks (tenant_id, id, document_id, ordinal, text, tsv, "
                            "tags, created_at) VALUES (:t, :i, :d, :o, 'live', "
                            "to_tsvector('simple', 'live'), '{}', now())"
                        ),
                        {"t": tenant.id, "i": uuid.uuid4(), "d": document_id, "o": ordinal},
                    )
            n += 1
            wrote.set()
            await asyncio.sleep(0)
        return n

    async def between_tables(table: str, rows: int) -> None:
        # Wait for the writer to commit once more while the export's snapshot is open.
        wrote.clear()
        await until_written()

    async def until_written() -> None:
        waiting = asyncio.ensure_future(wrote.wait())
        await asyncio.wait([waiting, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # the writer failed: say why instead of waiting for ever
            waiting.cancel()
            task.result()

    task = asyncio.create_task(writer())
    await until_written()
    path = tmp_path / "live.tar"
    try:
        await export_tenant(db, tenant=ops.source_of(tenant), into=path, progress=between_tables)
    finally:
        stop.set()
    written = await task
    archive = Archive.open(path)
    documents = {row["id"]: row["chunk_count"] for row in archive.rows("documents")}
    chunks: dict[str, int] = {}
    for row in archive.rows("chunks"):
        chunks[row["document_id"]] = chunks.get(row["document_id"], 0) + 1
    assert documents == chunks
    async with db.tenant(tenant.id) as session:
        live = await session.scalar(
            select(func.count()).select_from(text("documents")).where(text("title = 'live'"))
        )
    archived = sum(1 for row in archive.rows("documents") if row["title"] == "live")
    assert live == written and archived < written  # the writes went on past the snapshot


async def test_documents_unfinished_in_the_archive_are_ingested_again_after_restore_and_clone(
    filled, db, store, settings, admin_sql, tmp_path
):
    """A document still `pending` when the backup was taken has no workflow once it is restored
    (or cloned): the restore starts its ingestion again, through the outbox, in its transaction."""
    tenant, _ = filled
    pending = admin_sql.execute(
        "SELECT id FROM documents WHERE tenant_id = %s ORDER BY id LIMIT 1", (tenant.id,)
    ).fetchone()[0]
    admin_sql.execute("UPDATE documents SET status = 'pending' WHERE id = %s", (pending,))
    backup = await ops.take_backup(db, store, slug=tenant.slug, actor="test")
    admin_sql.execute("UPDATE documents SET status = 'ready' WHERE id = %s", (pending,))
    path = await fetched(store, backup.archive, tmp_path)

    def ingestions(tenant_id) -> list[tuple[str, str]]:
        return admin_sql.execute(
            "SELECT workflow_id, reuse_policy FROM outbox WHERE tenant_id = %s "
            "AND kind = 'start' AND workflow_type = 'IngestDocument'",  # delivered or not
            (tenant_id,),
        ).fetchall()

    admin_sql.execute("DELETE FROM outbox WHERE tenant_id = %s", (tenant.id,))
    await ops.restore(db, store, path=path, slug=tenant.slug, actor="test")
    assert ingestions(tenant.id) == [(f"{tenant.slug}/ingest/{pending}", "allow_duplicate")]

    record, mapping = await ops.clone(
        db, path=path, new_slug=unique_slug("clone"), actor="test", settings=settings
    )
    copied = mapping.ids[str(pending)]
    assert ingestions(record.tenant) == [(f"{record.slug}/ingest/{copied}", "allow_duplicate")]
