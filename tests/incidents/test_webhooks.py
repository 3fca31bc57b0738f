"""Webhooks: Standard Webhooks signatures checked by an independent receiver on loopback, retries
with backoff, the delivery log, redelivery, and targets refused unless allow-listed."""

from __future__ import annotations

from tests.incidents.conftest import asyncio_wait, register, report
from tests.workflows import started


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
    listed = (await client.get("/v1/webhooks", headers=headers)).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


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
    run = await started(temporal_client, f"{tenant.slug}/webhook/{log[0]['id']}")
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
