"""Incident tests: a tenant with an admin, some knowledge, and helpers to wait on workflows."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import bearer, login
from tests.knowledge.conftest import add_document
from tests.workflows import started

BOILER = (
    "Si la caldera no enciende tras un corte de luz, pulse el botón de rearme durante tres segundos "
    "y compruebe que la presión está entre 1 y 1,5 bar."
)


@pytest.fixture
async def desk(client, make_tenant, make_user, temporal_client, worker):
    """A tenant whose knowledge explains the boiler reset; its admin's headers."""
    tenant = await make_tenant(tier="standard")
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await add_document(
        client, temporal_client, tenant, headers, title="Caldera bloqueada", text=BOILER
    )
    return tenant, headers


def workflow_id_of(tenant, number: str, episode: int = 1) -> str:
    base = f"{tenant.slug}/incident/{number.removeprefix('INC-')}"
    return base if episode == 1 else f"{base}/{episode}"


def handle(temporal_client, tenant, number: str, episode: int = 1):
    return temporal_client.get_workflow_handle(workflow_id_of(tenant, number, episode))


async def run_of(temporal_client, tenant, number: str, episode: int = 1):
    """The episode's workflow, once the outbox relay has started it."""
    return await started(temporal_client, workflow_id_of(tenant, number, episode))


async def until_waiting(temporal_client, tenant, number: str, episode: int = 1) -> dict:
    """Ask the workflow (a query, answered by the worker) until it waits for a person."""
    run = await run_of(temporal_client, tenant, number, episode)
    for _ in range(400):
        state = await run.query("state")
        if state["waiting_for_person"] and state["status"] == "awaiting_approval":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{number} never waited for a person: {state}")


async def report(client, headers, **fields) -> dict:
    body = {
        "title": "Caldera no enciende",
        "description": "Tras el apagón la caldera no arranca.",
        **fields,
    }
    response = await client.post("/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


class Receiver:
    """A customer's endpoint: verifies each signature itself, and can fail on purpose."""

    def __init__(self, fail_first: int = 0) -> None:
        self.secret: str | None = None
        self.fail_first = fail_first
        self.received: list[dict] = []
        self.arrived = threading.Condition()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def valid(self, headers, body: bytes) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return any(
            part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
            for part in headers["webhook-signature"].split()
        )

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.arrived:
                    if receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    receiver.received.append(
                        {
                            "valid": receiver.valid(self.headers, body),
                            "id": self.headers["webhook-id"],
                            "body": json.loads(body),
                        }
                    )
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def wait_for(self, count: int, timeout: float = 60) -> list[dict]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), (
                self.received
            )
            return list(self.received)

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


async def register(client, headers, receiver, events=("*",)) -> dict:
    response = await client.post(
        "/v1/webhooks", json={"url": receiver.url, "events": list(events)}, headers=headers
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    receiver.secret = endpoint["secret"]
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


async def asyncio_wait(target: Receiver, count: int) -> list[dict]:
    return await asyncio.to_thread(target.wait_for, count)
