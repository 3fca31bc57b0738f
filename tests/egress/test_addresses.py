"""Every form of an internal address is refused; public ones pass; the allow-list opens exactly
what it names."""

from __future__ import annotations

import ipaddress

import pytest

from tenantry.egress.addresses import refusal
from tenantry.egress.policy import EgressPolicy, EgressRefused

REFUSED = {
    # IPv4 ranges
    "0.0.0.0": "'this network'",
    "0.1.2.3": "'this network'",
    "10.1.2.3": "private",
    "100.64.0.1": "shared address space",
    "100.127.255.254": "shared address space",
    "127.0.0.1": "loopback",
    "127.53.0.9": "loopback",
    "169.254.0.5": "link-local",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.0.0.8": "IETF protocol assignments",  # is_global says True in Python 3.11
    "192.0.2.10": "documentation",
    "192.88.99.1": "6to4 relay",
    "192.168.1.1": "private",
    "198.18.0.1": "benchmarking",
    "198.19.255.1": "benchmarking",
    "198.51.100.7": "documentation",
    "203.0.113.9": "documentation",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",  # SSDP; is_global says True
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    # cloud metadata services
    "169.254.169.254": "metadata",
    "169.254.170.2": "metadata",
    "100.100.100.200": "metadata",
    "192.0.0.192": "metadata",
    "168.63.129.16": "metadata",  # in public space
    "fd00:ec2::254": "metadata",
    # IPv6 ranges
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "unique local",
    "fd12:3456::1": "unique local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",  # global-scope multicast; is_global says True
    "2001:db8::1": "documentation",
    "3fff::1": "documentation",
    "100::1": "discard-only",
    "64:ff9b:1::a00:1": "local-use NAT64",
    "5f00::1": "segment routing",
    # IPv4 inside IPv6
    "::ffff:127.0.0.1": "IPv4-mapped for 127.0.0.1",
    "::ffff:169.254.169.254": "IPv4-mapped for 169.254.169.254",
    "::ffff:10.0.0.1": "IPv4-mapped for 10.0.0.1",
    "::127.0.0.1": "IPv4-compatible",
    "::ffff:0:7f00:1": "IPv4-translated",
    "64:ff9b::7f00:1": "NAT64 for 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 for 169.254.169.254",
    "64:ff9b::6440:1": "NAT64 for 100.64.0.1",
    "2002:7f00:1::": "6to4 for 127.0.0.1",
    "2002:a9fe:a9fe::1": "6to4 for 169.254.169.254",
    "2002:c0a8:101::": "6to4 for 192.168.1.1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
}

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",  # mapped, and what it carries is public
    "64:ff9b::808:808",  # NAT64 to a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_every_internal_form_is_refused(address, reason):
    why = refusal(ipaddress.ip_address(address))
    assert why is not None and reason in why


@pytest.mark.parametrize("address", ALLOWED)
def test_globally_routable_addresses_pass(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_scoped_link_local_is_refused():
    assert refusal(ipaddress.ip_address("fe80::1%eth0")) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0x7f000001/",  # hex, resolved by the system to 127.0.0.1
        "http://2130706433/",  # decimal
        "http://0177.0.0.1/",  # octal
        "http://127.1/",  # short form
        "http://0/",
        "http://localhost/",
        "https://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://192.0.0.8/",
        "http://100.64.0.1/",
    ],
)
async def test_urls_with_internal_hosts_are_refused(url):
    with pytest.raises(EgressRefused):
        await EgressPolicy().target(url, schemes=("http", "https"))


async def test_a_name_with_any_internal_answer_is_refused():
    async def resolver(host, port):
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(EgressRefused, match=r"10\.0\.0\.7"):
        await EgressPolicy(resolver=resolver).target("https://mixed.example/", schemes=("https",))


async def test_the_allow_list_opens_what_it_names_and_nothing_more():
    async def resolver(host, port):
        return {"erp.internal": ["10.1.2.3"], "other.internal": ["10.9.9.9"]}[host]

    policy = EgressPolicy(("erp.internal", "192.168.50.0/24", "127.0.0.1"), resolver=resolver)
    assert (await policy.target("http://erp.internal/", schemes=("http",))).address == "10.1.2.3"
    assert (await policy.target("http://192.168.50.7/", schemes=("http",))).address
    assert (await policy.target("http://[::ffff:127.0.0.1]/", schemes=("http",))).address
    for refused in ("http://other.internal/", "http://192.168.51.7/", "http://127.0.0.2/"):
        with pytest.raises(EgressRefused):
            await policy.target(refused, schemes=("http",))


async def test_only_the_schemes_asked_for():
    with pytest.raises(EgressRefused):
        await EgressPolicy().target("file:///etc/passwd", schemes=("http", "https"))
    with pytest.raises(EgressRefused):
        await EgressPolicy().target("gopher://8.8.8.8/", schemes=("http", "https"))


def test_the_old_allow_list_setting_still_works(monkeypatch):
    from tenantry.settings import Settings

    monkeypatch.delenv("TENANTRY_EGRESS_ALLOWLIST", raising=False)
    monkeypatch.setenv("TENANTRY_WEBHOOK_ALLOWLIST", '["10.0.0.0/8"]')
    assert Settings().egress_allowlist == ("10.0.0.0/8",)
    monkeypatch.setenv("TENANTRY_EGRESS_ALLOWLIST", '["erp.internal"]')
    assert Settings().egress_allowlist == ("erp.internal",)
