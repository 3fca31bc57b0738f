"""The backup store's S3 path against a real S3-protocol server (moto's) on loopback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tenantry.ops import service as ops
from tenantry.ops.store import BackupStore
from tenantry.ops.verify import verify
from tests.servers import free_port


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert binary, "moto[server] is a dev dependency"
    server = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # wait for it to answer (a bounded poll, not a sleep standing in for a signal)
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.1)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3_store(s3_server) -> BackupStore:
    bucket = f"backups-{uuid.uuid4().hex[:8]}"
    assert httpx.put(f"{s3_server}/{bucket}").status_code == 200  # create the bucket
    options = {
        "endpoint": s3_server,
        "allow_http": "true",
        "access_key_id": "test",
        "secret_access_key": "test",
        "region": "us-east-1",
    }
    return BackupStore(f"s3://{bucket}/tenantry", options)


async def test_backup_to_s3_and_back(filled, db, s3_store, tmp_path):
    tenant, _ = filled
    backup = await ops.take_backup(db, s3_store, slug=tenant.slug, actor="test")
    assert await s3_store.keys(tenant.slug) == [backup.archive]
    path = await s3_store.fetch(backup.archive, tmp_path / "from-s3.tar")
    assert verify(path, manifest_sha256=backup.manifest_sha256).ok
    await s3_store.delete(backup.archive)
    assert await s3_store.keys(tenant.slug) == []
