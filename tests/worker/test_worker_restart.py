"""A worker killed in the middle of an ingestion, and started again, finishes the document without
duplicate chunks: each activity is idempotent and Temporal retries it on the new worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import bearer, login
from tests.knowledge.conftest import ingested
from tests.servers import wait_for_line

pytestmark = pytest.mark.slow


def start_worker(slug: str, *options: str, line: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenantry.cli", "worker", "--tenant", slug, *options],
        env={**os.environ, "TENANTRY_LOG_JSON": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_line(proc, line or f"worker on task queue tenant-{slug}-jobs", "stdout")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc


async def test_killed_worker_resumes_without_duplicates(
    client, make_tenant, make_user, temporal_client, admin_sql, operator_config
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    text = "\n\n".join(
        f"Apartado {i}. " + "La bomba de calor necesita mantenimiento anual. " * 14
        for i in range(160)
    )
    first = start_worker(tenant.slug)
    try:
        created = await client.post(
            "/v1/documents", json={"title": "Largo", "text": text}, headers=headers
        )
        document_id = created.json()["id"]

        def progress() -> tuple[int, int]:
            return admin_sql.execute(
                "SELECT count(*), count(embedding) FROM chunks WHERE document_id = %s",
                [document_id],
            ).fetchone()

        for _ in range(6000):  # until the worker is part-way through embedding (bounded)
            total, embedded = progress()
            if 0 < embedded < total:
                break
            await asyncio.sleep(0.01)
        assert 0 < embedded < total, (total, embedded)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()

    second = start_worker(tenant.slug)
    try:
        assert await ingested(temporal_client, tenant, document_id) == "ready"
    finally:
        second.terminate()
        second.wait(timeout=30)
    rows, ordinals, embedded = admin_sql.execute(
        "SELECT count(*), count(DISTINCT ordinal), count(embedding) FROM chunks WHERE document_id = %s",
        [document_id],
    ).fetchone()
    shown = (await client.get(f"/v1/documents/{document_id}", headers=headers)).json()
    assert rows == ordinals == embedded == shown["chunk_count"] > 32
    assert shown["status"] == "ready"


async def test_an_incident_waiting_for_a_person_survives_its_worker(
    client, make_tenant, make_user, temporal_client, operator_config
):
    from tests.incidents.conftest import handle, report, until_waiting

    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await operator_config(tenant, {"features": {"dedicated_workers": True}})
    first = start_worker(tenant.slug)
    try:
        incident = await report(client, headers, severity="high")
        before = await until_waiting(temporal_client, tenant, incident["number"])
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    second = start_worker(tenant.slug)
    try:
        # The new worker replays the history: same state, still waiting for the person.
        assert await until_waiting(temporal_client, tenant, incident["number"]) == before
        # No knowledge, so nothing to approve: a person's resolution ends it.
        resolved = await client.post(
            f"/v1/incidents/{incident['number']}/resolve",
            json={"resolution": "Rearme de la caldera."},
            headers=headers,
        )
        assert resolved.status_code == 202
        assert await handle(temporal_client, tenant, incident["number"]).result() == "resolved"
    finally:
        second.terminate()
        second.wait(timeout=30)
    done = (await client.get(f"/v1/incidents/{incident['number']}", headers=headers)).json()
    assert done["status"] == "resolved" and done["resolution"] == "Rearme de la caldera."
