"""Checking an archive without a database: the manifest, every file's SHA-256 and row count, and
the audit chain inside it. Every problem names its file, and its rows where it can."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tenantry.audit.chain import GENESIS, event_digest
from tenantry.ops.archive import BLOCK_ROWS, FORMAT, MANIFEST, Archive, ArchiveUnreadable

REQUIRED = ("format", "revision", "tenant", "created_at", "tenantry_version", "tables")


@dataclass
class Report:
    archive: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    manifest_sha256: str | None = None
    audit_events: int = 0

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def verify(path: Path, *, manifest_sha256: str | None = None) -> Report:
    report = Report(archive=path.name)
    try:
        archive = Archive.open(path)
    except (ArchiveUnreadable, OSError) as error:
        report.fail(str(error))
        return report
    report.manifest_sha256 = archive.manifest_sha256
    if manifest_sha256 is not None and archive.manifest_sha256 != manifest_sha256:
        report.fail(f"{MANIFEST}: its SHA-256 is not the one recorded when the backup was taken")
    manifest = archive.manifest
    missing = [key for key in REQUIRED if key not in manifest]
    if missing:
        report.fail(f"{MANIFEST}: missing {', '.join(missing)}")
        return report
    if manifest["format"] != FORMAT:
        report.fail(
            f"{MANIFEST}: archive format {manifest['format']}, this Tenantry reads {FORMAT}"
        )
        return report
    members = set(archive.members())
    listed = {entry["file"] for entry in archive.tables.values()}
    for extra in sorted(members - listed - {MANIFEST}):
        report.fail(f"{extra}: a file the manifest does not list")
    for table, entry in archive.tables.items():
        if entry["file"] not in members:
            report.fail(f"{entry['file']}: listed for table {table} but not in the archive")
            continue
        _check_file(archive, table, entry, report)
    if report.ok:
        _check_chain(archive, report)
    return report


def _check_file(archive: Archive, table: str, entry: dict, report: Report) -> None:
    data = archive.raw(entry["file"])
    if hashlib.sha256(data).hexdigest() == entry["sha256"]:
        report.rows[table] = entry["rows"]
        return
    where = _bad_rows(data, entry)
    report.fail(f"{entry['file']}: SHA-256 mismatch (table {table}{where})")


def _bad_rows(data: bytes, entry: dict) -> str:
    """Which block of rows changed, when the file still decompresses."""
    try:
        lines = gzip.GzipFile(fileobj=io.BytesIO(data)).read().splitlines(keepends=True)
    except (OSError, EOFError, ValueError, zlib.error):
        return ", the file no longer decompresses"
    if len(lines) != entry["rows"]:
        return f", {len(lines)} rows where the manifest says {entry['rows']}"
    for index, expected in enumerate(entry["blocks"]):
        block = lines[index * BLOCK_ROWS : (index + 1) * BLOCK_ROWS]
        if hashlib.sha256(b"".join(block)).hexdigest() != expected:
            first = index * BLOCK_ROWS + 1
            return f", rows {first}-{first + len(block) - 1}"
    return ""


def _check_chain(archive: Archive, report: Report) -> None:
    """The exported audit events chain from the genesis to the head the manifest names."""
    if "audit_events" not in archive.tables:
        report.fail(f"{MANIFEST}: no audit_events table")
        return
    prev_hash, seq = GENESIS, 0
    for event in archive.rows("audit_events"):
        seq += 1
        where = f"{archive.tables['audit_events']['file']}: audit event {event.get('seq')}"
        if event["seq"] != seq:
            report.fail(f"{where}: expected event {seq} (one is missing)")
            return
        if event["prev_hash"] != prev_hash:
            report.fail(f"{where}: the link to the previous event is broken")
            return
        digest = event_digest(
            prev_hash=event["prev_hash"],
            tenant_id=event["tenant_id"],
            seq=event["seq"],
            occurred_at=datetime.fromisoformat(event["occurred_at"]),
            actor=event["actor"],
            action=event["action"],
            target=event["target"],
            request_id=event["request_id"],
            before=event["before"],
            after=event["after"],
        )
        if digest != event["hash"]:
            report.fail(f"{where}: the event was altered")
            return
        prev_hash = event["hash"]
    report.audit_events = seq
    head = archive.manifest.get("audit_head") or {"seq": 0, "hash": GENESIS}
    if (seq, prev_hash) != (head["seq"], head["hash"]):
        report.fail(
            f"{MANIFEST}: the audit chain ends at event {seq}, the manifest's head is {head['seq']}"
        )
