"""Webhooks: Standard Webhooks signatures checked by an independent receiver on loopback, retries
with backoff, the delivery log, redelivery, and targets refused unless allow-listed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.incidents.conftest import report


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


async def test_signed_deliveries_reach_the_receiver_and_are_logged(
    client, desk, receiver, temporal_client
):
    tenant, headers = desk
    target = receiver()
    endpoint = await register(client, headers, target, events=["incident.created"])
    incident = await report(client, headers)
    [delivery] = await asyncio_wait(target, 1)
    assert delivery["valid"] and delivery["id"].startswith("msg_")
    assert delivery["body"]["type"] == "incident.created"
    assert delivery["body"]["data"]["number"] == incident["number"]
    log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)).json()[
        "items"
    ]
    await temporal_client.get_workflow_handle(f"{tenant.slug}/webhook/{log[0]['id']}").result()
    log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)).json()[
        "items"
    ]
    assert (log[0]["status"], log[0]["attempts"], log[0]["last_status_code"]) == (
        "delivered",
        1,
        204,
    )
    listed = (await client.get("/v1/webhooks", headers=headers)).json()
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


async def asyncio_wait(target: Receiver, count: int) -> list[dict]:
    import asyncio

    return await asyncio.to_thread(target.wait_for, count)


async def test_failures_are_retried_with_backoff_then_delivered(
    client, desk, receiver, temporal_client
):
    tenant, headers = desk
    target = receiver(fail_first=2)
    endpoint = await register(client, headers, target)
    await report(client, headers)
    [delivery] = await asyncio_wait(target, 1)
    assert delivery["valid"]
    log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)).json()[
        "items"
    ]
    await temporal_client.get_workflow_handle(f"{tenant.slug}/webhook/{log[0]['id']}").result()
    log = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)).json()[
        "items"
    ]
    assert (log[0]["status"], log[0]["attempts"]) == ("delivered", 3)


async def test_giving_up_after_the_maximum_then_redelivery(client, desk, receiver, temporal_client):
    tenant, headers = desk
    await client.patch("/v1/config", json={"webhooks": {"max_attempts": 2}}, headers=headers)
    target = receiver(fail_first=2)
    endpoint = await register(client, headers, target)
    await report(client, headers)
    for _ in range(200):
        log = (
            await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)
        ).json()["items"]
        if log:
            break
    run = temporal_client.get_workflow_handle(f"{tenant.slug}/webhook/{log[0]['id']}")
    assert await run.result() == "failed"
    failed = (
        await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=headers)
    ).json()["items"][0]
    assert (failed["status"], failed["attempts"]) == ("failed", 2) and "503" in failed["last_error"]

    again = await client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{failed['id']}/redeliver", headers=headers
    )
    assert again.status_code == 202
    [delivery] = await asyncio_wait(target, 1)
    assert (
        delivery["valid"] and delivery["id"] == f"msg_{failed['id'].replace('-', '')}"
    )  # same message id
    assert (
        await temporal_client.get_workflow_handle(f"{tenant.slug}/webhook/{failed['id']}").result()
        == "delivered"
    )


async def test_private_targets_are_refused_unless_allow_listed(client, desk):
    _, headers = desk
    for url in (
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://[::1]:8080/hook",
        "http://127.0.0.2:1/x",
    ):
        refused = await client.post("/v1/webhooks", json={"url": url}, headers=headers)
        assert refused.status_code == 422, url
        assert refused.json()["type"].endswith("/forbidden-webhook-target")
    assert (
        await client.post("/v1/webhooks", json={"url": "ftp://x/y"}, headers=headers)
    ).status_code == 422
    allowed = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/erp"}, headers=headers
    )
    assert allowed.status_code == 201  # 127.0.0.1 is on this test deployment's allow-list


async def test_endpoints_are_updated_and_deleted(client, desk):
    _, headers = desk
    endpoint = (
        await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/a"}, headers=headers)
    ).json()
    updated = await client.patch(
        f"/v1/webhooks/{endpoint['id']}",
        json={"active": False, "events": ["incident.resolved"]},
        headers=headers,
    )
    assert updated.json()["active"] is False and updated.json()["events"] == ["incident.resolved"]
    assert (
        await client.patch(
            f"/v1/webhooks/{endpoint['id']}", json={"url": "http://10.0.0.1/"}, headers=headers
        )
    ).status_code == 422
    assert (
        await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=headers)
    ).status_code == 204
    assert (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=headers)).status_code == 404
