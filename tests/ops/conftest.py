"""Backup tests: a filled tenant, archives fetched from the store, and comparing two archives."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tenantry.ops.archive import Archive
from tenantry.ops.remap import IdMap
from tenantry.ops.store import BackupStore
from tenantry.ops.tables import DATA
from tests.conftest import bearer, login
from tests.ops.fill import add_chunks, add_incidents, fill_through_api


@pytest.fixture
async def filled(client, make_tenant, make_user, db):
    """A tenant with rows in every DATA table, and its admin's headers."""
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    await make_user(tenant, "member")
    made = await fill_through_api(client, headers)
    await add_incidents(db, tenant.id, made["webhook"]["id"])
    await add_chunks(db, tenant.id, documents=3, chunks_per_document=4)
    return tenant, headers


async def fetched(store: BackupStore, key: str, folder: Path) -> Path:
    return await store.fetch(key, folder / Path(key).name)


def data_rows(archive: Archive, mapping: IdMap | None = None) -> dict[str, list[str]]:
    """Every DATA table's rows as canonical JSON, ids mapped when a mapping is given."""
    out = {}
    for table in archive.tables:
        if table not in DATA:
            continue
        rows = archive.rows(table)
        if mapping is not None:
            rows = (mapping.row(row) for row in rows)
        out[table] = sorted(json.dumps(row, sort_keys=True) for row in rows)
    return out


def rewrite(path: Path, into: Path, table: str, edit, **manifest_changes) -> None:
    """A copy of the archive whose `table` rows went through `edit`, with checksums recomputed:
    what a buggy exporter (not a corruption) would write."""
    import gzip
    import hashlib

    from tenantry.ops.archive import BLOCK_ROWS, pack, table_file

    archive = Archive.open(path)
    folder = into.parent / "rewrite"
    folder.mkdir()
    manifest = {**archive.manifest, **manifest_changes}
    for name, entry in manifest["tables"].items():
        lines = list(archive.lines(name))
        if name == table:
            lines = [edit(json.loads(line)) for line in lines]
            lines = [json.dumps(row) for row in lines]
        body = "".join(line + "\n" for line in lines).encode()
        file = folder / Path(table_file(name)).name
        file.write_bytes(gzip.compress(body))
        entry["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
        raw = [line.encode() + b"\n" for line in lines]
        entry["blocks"] = [
            hashlib.sha256(b"".join(raw[i : i + BLOCK_ROWS])).hexdigest()
            for i in range(0, len(raw), BLOCK_ROWS)
        ]
    pack(folder, manifest, into)


def flip_byte(path: Path, member: str, offset_in_member: int = 40) -> None:
    """Change one byte inside one file of the tar, in place."""
    with tarfile.open(path) as tar:
        info = tar.getmember(member)
        at = info.offset_data + min(offset_in_member, info.size - 1)
    with path.open("r+b") as file:
        file.seek(at)
        byte = file.read(1)
        file.seek(at)
        file.write(bytes([byte[0] ^ 0x01]))
