"""Where archives live: one object-store interface (obstore) over a folder under the home by
default, or any S3-compatible store (MinIO, AWS, a test's moto server) named by URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.store import LocalStore, from_url

from tenantry.settings import Settings


@dataclass(frozen=True)
class StoredArchive:
    key: str
    size: int


class BackupStore:
    def __init__(self, url: str, options: dict[str, str] | None = None) -> None:
        self.url = url
        if url.startswith("file://"):
            folder = Path(url.removeprefix("file://"))
            folder.mkdir(parents=True, exist_ok=True)
            self._store = LocalStore(folder)
        else:
            config = dict(options or {})
            # `allow_http` is the HTTP client's option (a MinIO or test server without TLS).
            plain_http = config.pop("allow_http", "false").lower() == "true"
            self._store = from_url(
                url, config=config or None, client_options={"allow_http": plain_http}
            )

    @classmethod
    def of(cls, settings: Settings) -> BackupStore:
        url = settings.backup_url or f"file://{settings.home / 'backups'}"
        return cls(url, dict(settings.backup_store_options))

    async def put(self, key: str, path: Path) -> StoredArchive:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            await obstore.put_async(self._store, key, file)
        return StoredArchive(key, size)

    async def fetch(self, key: str, into: Path) -> Path:
        result = await obstore.get_async(self._store, key)
        with into.open("wb") as out:
            async for chunk in result.stream():
                out.write(chunk)
        return into

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, key)

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        async for batch in obstore.list(self._store, prefix=prefix):
            found.extend(item["path"] for item in batch)
        return sorted(found)
