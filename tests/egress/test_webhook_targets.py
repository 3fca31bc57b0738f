"""Webhook URLs meet the egress policy when saved: the forms the old filter let through."""

from __future__ import annotations

import pytest

from tests.conftest import bearer, login


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/",  # shared address space
        "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata service
        "http://192.0.0.8/",  # IETF protocol assignments
        "http://198.18.0.1/",  # benchmarking
        "http://239.255.255.250:1900/",  # multicast
        "http://[::ffff:10.0.0.1]/",  # IPv4-mapped private
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of the metadata address
        "http://0xa9fea9fe/",  # the metadata address spelled in hex
        "http://2852039166/",  # the same as one decimal number
        "http://[::a9fe:a9fe]/",  # IPv4-compatible
    ],
)
async def test_internal_webhook_targets_are_refused_when_saved(client, make_tenant, make_user, url):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    refused = await client.post("/v1/webhooks", json={"url": url}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/forbidden-webhook-target")
    assert (await client.get("/v1/webhooks", headers=headers)).json()["items"] == []
