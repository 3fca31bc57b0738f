"""The append-only audit log keeps a webhook's host, never the path, query or user info of its
URL, which often carry the receiver's secret."""

from __future__ import annotations

import json

from tests.conftest import bearer, login

SECRET_PATH = "hooks/T0KEN-IN-PATH-8c1f"
SECRET_QUERY = "sig=Q-SECRET-77aa"


async def test_webhooks_are_audited_by_host_only(client, make_tenant, make_user, admin_sql):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    url = f"http://127.0.0.1:9/{SECRET_PATH}?{SECRET_QUERY}"
    created = await client.post("/v1/webhooks", json={"url": url}, headers=headers)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    moved = await client.patch(
        f"/v1/webhooks/{endpoint['id']}",
        json={"url": "http://127.0.0.1:8080/other/PATH-SECRET-2?k=v2"},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    assert (
        await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=headers)
    ).status_code == 204

    rows = admin_sql.execute(
        "SELECT action, before, after FROM audit_events "
        "WHERE tenant_id = %s AND action LIKE 'webhook.%%' ORDER BY seq",
        [tenant.id],
    ).fetchall()
    assert [(action, before, after) for action, before, after in rows] == [
        ("webhook.created", None, {"host": "127.0.0.1:9", "events": ["*"], "active": True}),
        (
            "webhook.updated",
            {"host": "127.0.0.1:9", "events": ["*"], "active": True},
            {"host": "127.0.0.1:8080", "events": ["*"], "active": True},
        ),
        ("webhook.deleted", {"host": "127.0.0.1:8080", "events": ["*"], "active": True}, None),
    ]
    written = json.dumps(rows)
    for secret in (SECRET_PATH, SECRET_QUERY, "PATH-SECRET-2", endpoint["secret"]):
        assert secret not in written
