"""The archive format: a tar of one gzipped JSON-lines file per table and a manifest.

Each table's rows are `to_jsonb(row)` as PostgreSQL writes it (vectors as their text form, so a
restore puts back exactly the vectors that were exported). The manifest names the schema
revision, the rows and SHA-256 of every file, a SHA-256 per block of rows (so a changed byte is
named down to the rows it is in), the audit chain's head, the source tenant, the time and the
Tenantry version. Verifying is pure: see `verify.py`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
BLOCK_ROWS = 1000


def table_file(table: str) -> str:
    return f"tables/{table}.jsonl.gz"


@dataclass
class TableWriter:
    """Rows of one table, written to a gzipped file with their counts and block digests."""

    table: str
    path: Path
    rows: int = 0
    blocks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Open across many writes; `close()` closes it.
        self._file = gzip.open(self.path, "wb", compresslevel=5)  # noqa: SIM115
        self._block = hashlib.sha256()

    def write(self, line: str) -> None:
        data = line.encode() + b"\n"
        self._file.write(data)
        self._block.update(data)
        self.rows += 1
        if self.rows % BLOCK_ROWS == 0:
            self.blocks.append(self._block.hexdigest())
            self._block = hashlib.sha256()

    def close(self) -> dict[str, Any]:
        if self.rows % BLOCK_ROWS:
            self.blocks.append(self._block.hexdigest())
        self._file.close()
        return {
            "file": table_file(self.table),
            "rows": self.rows,
            "sha256": file_sha256(self.path),
            "blocks": self.blocks,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pack(folder: Path, manifest: dict[str, Any], into: Path) -> str:
    """Write the tar at `into`: the manifest first, then every table file; its SHA-256."""
    body = json.dumps(manifest, indent=1, sort_keys=True).encode()
    with tarfile.open(into, "w") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for entry in manifest["tables"].values():
            tar.add(folder / Path(entry["file"]).name, arcname=entry["file"])
    return hashlib.sha256(body).hexdigest()


class ArchiveUnreadable(ValueError):
    """Not a Tenantry archive at all (not a tar, or no manifest)."""


@dataclass
class Archive:
    """An archive opened for reading (the tar's members are read on demand)."""

    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str

    @classmethod
    def open(cls, path: Path) -> Archive:
        try:
            with tarfile.open(path, "r") as tar:
                member = tar.extractfile(MANIFEST)
                if member is None:
                    raise ArchiveUnreadable(f"{path.name}: no {MANIFEST} in the archive")
                body = member.read()
        except (tarfile.TarError, KeyError) as error:
            raise ArchiveUnreadable(f"{path.name}: not a Tenantry archive ({error})") from error
        try:
            manifest = json.loads(body)
        except ValueError as error:
            raise ArchiveUnreadable(f"{MANIFEST}: not valid JSON ({error})") from error
        return cls(path, manifest, hashlib.sha256(body).hexdigest())

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        return self.manifest["tables"]

    def members(self) -> list[str]:
        with tarfile.open(self.path, "r") as tar:
            return tar.getnames()

    def raw(self, name: str) -> bytes:
        with tarfile.open(self.path, "r") as tar:
            member = tar.extractfile(name)
            if member is None:
                raise KeyError(name)
            return member.read()

    def lines(self, table: str) -> Iterator[str]:
        """The table's rows, one JSON text each, as exported."""
        with tarfile.open(self.path, "r") as tar:
            member = tar.extractfile(self.tables[table]["file"])
            if member is None:
                raise KeyError(table)
            with gzip.open(member, "rt", encoding="utf-8") as rows:
                for line in rows:
                    yield line.rstrip("\n")

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        for line in self.lines(table):
            yield json.loads(line)
