"""Hostile documents: a PDF bomb and a file of NULs fail once, with a plain reason, in a process of
their own, while another tenant keeps being served; the sandbox's own time and memory limits."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest
from temporalio.api.enums.v1 import EventType

from tenantry.knowledge.extract import UnreadableDocument, extract_text
from tenantry.knowledge.sandbox import Extractor
from tests.conftest import bearer, login
from tests.knowledge.conftest import ingested
from tests.pdf import flate_pdf, pdf_bomb

INTERNALS = ("SQL", "Traceback", "psycopg", "INSERT", "sqlalchemy", "Error:")


async def _attempts_of(temporal_client, tenant, document_id: str, activity: str) -> list[int]:
    """The attempt number of each start of `activity` in the document's workflow history."""
    handle = temporal_client.get_workflow_handle(f"{tenant.slug}/ingest/{document_id}")
    history = await handle.fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]


@pytest.fixture
async def neighbour(client, make_tenant, make_user, operator_headers):
    """Another tenant, with a key, that keeps working while the hostile upload is read; its own
    limits are out of reach, so that only its neighbour could slow it."""
    tenant = await make_tenant(tier="standard")
    admin = await make_user(tenant, "admin")
    raised = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits",
        json={"requests_per_minute": 1_000_000},
        headers=operator_headers,
    )
    assert raised.status_code == 200, raised.text
    return bearer((await login(client, tenant, admin))["access_token"])


async def _serve_until(client, headers, done: asyncio.Event) -> list[int]:
    statuses = []
    while not done.is_set():
        for path in ("/v1/me", "/v1/documents"):
            statuses.append((await client.get(path, headers=headers)).status_code)
    return statuses


@pytest.mark.parametrize(
    ("filename", "content", "ctype", "reason"),
    [
        ("plano.pdf", pdf_bomb(6_000_000), "application/pdf", "inflates to more than"),
        ("nulos.txt", b"\x00" * 400_000 + b"texto al final", "text/plain", "binary data"),
    ],
    ids=["pdf-bomb", "nul-laden"],
)
async def test_a_hostile_document_fails_once_while_another_tenant_is_served(
    client, kb, neighbour, temporal_client, admin_sql, filename, content, ctype, reason
):
    tenant, headers = kb
    assert len(content) < 500_000  # small on the wire
    upload = await client.post(
        "/v1/documents/upload", files={"file": (filename, content, ctype)}, headers=headers
    )
    assert upload.status_code == 202, upload.text
    document_id = upload.json()["id"]

    done = asyncio.Event()
    served = asyncio.create_task(_serve_until(client, neighbour, done))
    try:
        outcome = await ingested(temporal_client, tenant, document_id)
    finally:
        done.set()
        statuses = await served
    assert outcome == "failed"
    assert statuses and set(statuses) == {200}  # the other tenant was answered throughout

    failed = (await client.get(f"/v1/documents/{document_id}", headers=headers)).json()
    assert failed["status"] == "failed" and reason in failed["error"]
    assert not any(word in failed["error"] for word in INTERNALS), failed["error"]
    assert await _attempts_of(temporal_client, tenant, document_id, "knowledge.prepare_chunks") == [
        1
    ]
    assert admin_sql.execute(
        "SELECT count(*) FROM chunks WHERE document_id = %s", [document_id]
    ).fetchone() == (0,)


def _sandboxes() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(os.getpid()).children(recursive=True)
        if "tenantry.knowledge.sandbox" in " ".join(p.cmdline())
    ]


async def test_the_sandbox_stops_a_document_past_its_time_and_leaves_no_process(settings):
    # Inflation allowed, so only the clock stops pypdf's minutes of drawing operators.
    slow = settings.model_copy(update={"extract_max_inflation": 1e6, "extract_timeout_seconds": 1})
    with pytest.raises(UnreadableDocument, match="longer than 1 seconds"):
        await Extractor(slow).prepare(pdf_bomb(6_000_000), "pdf", title="plano")
    assert _sandboxes() == []


async def test_the_sandbox_stops_a_document_past_its_memory(settings):
    # 400 MB of zeros packed in about 400 KB; inflation allowed, so only the memory limit acts.
    zeros = flate_pdf(b"0" * 400_000_000)
    tight = settings.model_copy(update={"extract_max_inflation": 1e6, "extract_memory_mb": 200})
    with pytest.raises(UnreadableDocument, match="more than 200 MB of memory"):
        await Extractor(tight).prepare(zeros, "pdf", title="ceros")
    assert _sandboxes() == []


async def test_the_sandbox_reads_a_good_document_and_refuses_too_many_chunks(settings):
    text = "\n\n".join(
        f"Apartado {i}. " + "La caldera necesita revisión anual. " * 20 for i in range(40)
    )
    prepared = await Extractor(settings).prepare(text.encode(), "txt", title="Manual")
    assert prepared.text == text and prepared.chunks[0].startswith("Manual")
    few = settings.model_copy(update={"max_chunks_per_document": 5})
    with pytest.raises(UnreadableDocument, match="too long"):
        await Extractor(few).prepare(text.encode(), "txt", title="Manual")


def test_stray_nul_characters_are_dropped_and_bom_marked_text_is_decoded():
    assert extract_text(b"caldera\x00 sin\x00 llama " * 50, "txt").startswith("caldera sin llama")
    assert extract_text("\ufeffcalefacción".encode("utf-16-le"), "txt").endswith("calefacción")
    pages = flate_pdf(b"BT /F1 11 Tf 56 760 Td (Presion baja) Tj ET")
    assert "Presion baja" in extract_text(pages, "pdf")
