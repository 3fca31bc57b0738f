"""OIDC single sign-on per tenant, against two real OpenID providers on loopback (one for each
of two tenants): the code flow with PKCE, state and nonce, allowed domains, roles from claims,
and every way a sign-in must be refused."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from tenantry.identity.oidc_provider import TokenRejected
from tests.conftest import all_items, bearer, login
from tests.identity.oidc_servers import authorize, provider, query, set_person

CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def issuers():
    with provider() as first, provider() as second:
        yield first, second


async def connect(client, make_tenant, make_user, issuer, **overrides):
    """A tenant whose owner configured an OIDC connection to `issuer`."""
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    headers = bearer((await login(client, tenant, owner))["access_token"])
    settings = {
        "issuer": issuer,
        "client_id": f"tenantry-{tenant.slug}",
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["acme.example"],
        "role_claim": "groups",
        "role_map": {"eng-admins": "admin", "eng": "member"},
        **overrides,
    }
    put = await client.put("/v1/sso/oidc", json=settings, headers=headers)
    assert put.status_code == 200, put.text
    return tenant, owner, headers


async def start(client, tenant) -> str:
    started = await client.get(f"/v1/auth/oidc/{tenant.slug}/start")
    assert started.status_code == 302, started.text
    return started.headers["location"]


async def sign_in(client, tenant, sub: str):
    back = await authorize(await start(client, tenant), sub)
    return await client.get(back)


def person(email: str, groups=("eng",), verified: bool = True) -> dict:
    return {"email": email, "email_verified": verified, "groups": list(groups), "name": "Pat"}


async def test_the_code_flow_signs_in_with_pkce_and_the_mapped_role(
    client, make_tenant, make_user, issuers, admin_sql
):
    tenant, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    sub = f"pat-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], sub, **person(f"{sub}@Acme.example", ["eng-admins"]))
    location = await start(client, tenant)
    sent = query(location)
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["nonce"] and sent["state"] and sent["scope"] == "openid email profile"
    signed = await client.get(await authorize(location, sub))
    assert signed.status_code == 200, signed.text
    me = (await client.get("/v1/me", headers=bearer(signed.json()["access_token"]))).json()
    assert (me["name"], me["role"]) == (f"{sub}@acme.example", "admin")
    row = admin_sql.execute(
        "SELECT i.source, i.issuer, i.subject, u.auth_source FROM user_identities i "
        "JOIN users u ON u.tenant_id = i.tenant_id AND u.id = i.user_id WHERE i.tenant_id = %s",
        [tenant.id],
    ).fetchall()
    assert row == [("oidc", issuers[0], sub, "oidc")]
    # The same person again: the same user, found by (issuer, sub).
    again = await sign_in(client, tenant, sub)
    assert again.status_code == 200
    count = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'oidc'", [tenant.id]
    ).fetchone()[0]
    assert count == 1


async def test_a_domain_the_tenant_did_not_allow_is_refused(
    client, make_tenant, make_user, issuers, admin_sql
):
    tenant, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    await set_person(issuers[0], "outsider", **person("outsider@elsewhere.example"))
    refused = await sign_in(client, tenant, "outsider")
    assert refused.status_code == 403 and refused.json()["type"].endswith("/sso-domain-not-allowed")
    unverified = f"unverified-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], unverified, **person(f"{unverified}@acme.example", verified=False))
    assert (await sign_in(client, tenant, unverified)).status_code == 401
    users = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'oidc'", [tenant.id]
    ).fetchone()[0]
    assert users == 0


async def test_a_code_from_tenant_a_provider_is_refused_by_tenant_b(
    client, make_tenant, make_user, issuers, app, admin_sql
):
    a, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    b, _, _ = await connect(client, make_tenant, make_user, issuers[1])
    sub = f"ana-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], sub, **person(f"{sub}@acme.example"))
    code_from_a = query(await authorize(await start(client, a), sub))["code"]
    state_of_b = query(await start(client, b))["state"]  # B's sign-in, this browser's cookie
    crossed = await client.get(
        f"/v1/auth/oidc/{b.slug}/callback", params={"code": code_from_a, "state": state_of_b}
    )
    assert crossed.status_code == 401, crossed.text
    assert crossed.json()["type"].endswith("/oidc-sign-in-refused")
    # And an ID token A's provider signed does not verify as B's, whatever the code path.
    providers = app.state.oidc_providers
    meta_a, meta_b = await providers.metadata(issuers[0]), await providers.metadata(issuers[1])
    location = await start(client, a)
    nonce = query(location)["nonce"]
    tokens = await providers.redeem(
        meta_a,
        client_id=f"tenantry-{a.slug}",
        client_secret=CLIENT_SECRET,
        code=query(await authorize(location, sub))["code"],
        code_verifier="unused-by-this-provider",
        redirect_uri=f"http://test/v1/auth/oidc/{a.slug}/callback",
    )
    claims = await providers.verify(
        meta_a, tokens, issuer=issuers[0], client_id=f"tenantry-{a.slug}", nonce=nonce
    )
    assert claims["sub"] == sub  # A's own token is good for A...
    with pytest.raises(TokenRejected):  # ...and not for B
        await providers.verify(
            meta_b, tokens, issuer=issuers[1], client_id=f"tenantry-{b.slug}", nonce=nonce
        )
    for tenant in (a, b):
        assert (
            admin_sql.execute(
                "SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'oidc'",
                [tenant.id],
            ).fetchone()[0]
            == 0
        )


async def test_a_replayed_state_a_wrong_nonce_and_another_browser_are_refused(
    client, make_tenant, make_user, issuers
):
    tenant, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    sub = f"rep-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], sub, **person(f"{sub}@acme.example"))
    back = await authorize(await start(client, tenant), sub)
    assert (await client.get(back)).status_code == 200
    replayed = await client.get(back)
    assert replayed.status_code == 401 and "already used" in replayed.json()["detail"]

    # The nonce sent to the provider is not the one this sign-in stored.
    location = urlsplit(await start(client, tenant))
    params = {**query(urlunsplit(location)), "nonce": "attacker-chosen-nonce"}
    tampered = urlunsplit(location._replace(query=urlencode(params)))
    wrong_nonce = await client.get(await authorize(tampered, sub))
    assert wrong_nonce.status_code == 401 and "nonce" in wrong_nonce.json()["detail"]

    # A callback from a browser that did not start the sign-in (no binding cookie).
    back = await authorize(await start(client, tenant), sub)
    client.cookies.clear()
    assert (await client.get(back)).status_code == 401


async def test_an_sso_sign_in_never_lands_on_a_local_account_unless_linked(
    client, make_tenant, make_user, issuers, admin_sql
):
    tenant, _, owner_headers = await connect(client, make_tenant, make_user, issuers[0])
    admin = await make_user(tenant, "admin", email=f"boss-{uuid.uuid4().hex[:6]}@acme.example")
    sub = f"mallory-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], sub, **person(admin.email, ["eng"]))
    refused = await sign_in(client, tenant, sub)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/sso-not-linked")
    assert admin_sql.execute(
        "SELECT role FROM users WHERE tenant_id = %s AND id = %s", [tenant.id, admin.id]
    ).fetchone() == ("admin",)
    # The admin's own account, linked by an owner: now it signs in as that admin, and the
    # mapping (eng: member) demotes them, within the owner's authority.
    linked = await client.post(
        f"/v1/users/{admin.id}/identities",
        json={"source": "oidc", "subject": sub},
        headers=owner_headers,
    )
    assert linked.status_code == 201, linked.text
    signed = await sign_in(client, tenant, sub)
    assert signed.status_code == 200
    me = (await client.get("/v1/me", headers=bearer(signed.json()["access_token"]))).json()
    assert (me["id"], me["role"]) == (str(admin.id), "member")


async def test_a_users_identities_are_listed_a_page_at_a_time(
    client, make_tenant, make_user, issuers
):
    tenant, _, owner_headers = await connect(client, make_tenant, make_user, issuers[0])
    member = await make_user(tenant, "member")
    url = f"/v1/users/{member.id}/identities"
    linked = []
    for n in range(3):
        response = await client.post(
            url, json={"source": "oidc", "subject": f"sub-{n}"}, headers=owner_headers
        )
        assert response.status_code == 201, response.text
        linked.append(response.json()["id"])
    first = await client.get(url, params={"limit": 2}, headers=owner_headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["limit"] == 2 and [i["id"] for i in page["items"]] == linked[:2]
    rest = await client.get(
        url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=owner_headers
    )
    assert [i["id"] for i in rest.json()["items"]] == linked[2:]
    assert rest.json()["next_cursor"] is None
    assert [i["subject"] for i in await all_items(client, url, owner_headers, limit=1)] == [
        "sub-0",
        "sub-1",
        "sub-2",
    ]
    # Another list's cursor is refused, naming the field.
    users_cursor = (
        await client.get("/v1/users", params={"limit": 1}, headers=owner_headers)
    ).json()["next_cursor"]
    refused = await client.get(url, params={"cursor": users_cursor}, headers=owner_headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.cursor"


async def test_roles_from_claims_are_capped_and_the_secret_is_never_shown(
    client, make_tenant, make_user, issuers, admin_sql
):
    tenant, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    shown = await client.get("/v1/sso/oidc", headers=headers)
    assert shown.status_code == 200 and CLIENT_SECRET not in shown.text
    assert shown.json()["redirect_uri"].endswith(f"/v1/auth/oidc/{tenant.slug}/callback")
    sealed = admin_sql.execute(
        "SELECT client_secret_sealed FROM oidc_configs WHERE tenant_id = %s", [tenant.id]
    ).fetchone()[0]
    assert CLIENT_SECRET.encode() not in bytes(sealed)
    to_owner = {
        **{
            k: v for k, v in shown.json().items() if k in ("issuer", "client_id", "allowed_domains")
        },
        "role_claim": "groups",
        "role_map": {"eng": "owner"},
    }
    refused = await client.put("/v1/sso/oidc", json=to_owner, headers=headers)
    assert refused.status_code == 403
    audit = admin_sql.execute(
        "SELECT count(*) FROM audit_events t WHERE tenant_id = %s AND to_jsonb(t)::text LIKE %s",
        [tenant.id, f"%{CLIENT_SECRET}%"],
    ).fetchone()[0]
    assert audit == 0


async def test_connection_settings_that_cannot_be_used_are_a_422_naming_the_field(
    client, make_tenant, make_user
):
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    headers = bearer((await login(client, tenant, owner))["access_token"])
    good = {
        "issuer": "https://idp.example.com/",  # a trailing slash, as Auth0's issuers have
        "client_id": "tenantry",
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["acme.example"],
    }
    for field, value in (
        ("client_id", "ten\x00antry"),
        ("client_secret", "sec\x00ret"),
        ("issuer", "https://idp.exam\x00ple.com/"),
        ("role_claim", "gro\x00ups"),
        ("role_map", {"e\x00ng": "member"}),
        ("enabled", "yes"),
        ("issuer", "http://idp.example.com"),  # plain http to a host the operator did not list
        ("issuer", "https://idp.example.com/?x=1"),
        ("allowed_domains", ["not a domain"]),
    ):
        refused = await client.put("/v1/sso/oidc", json={**good, field: value}, headers=headers)
        assert refused.status_code == 422, (field, value, refused.text)
        assert any(e["field"].startswith(f"body.{field}") for e in refused.json()["errors"])
    assert (await client.get("/v1/sso/oidc", headers=headers)).status_code == 404
    assert (await client.put("/v1/sso/oidc", json=good, headers=headers)).status_code == 200
    refused = await client.post(
        f"/v1/users/{owner.id}/identities",
        json={"source": "oidc", "subject": "sub\x00ject"},
        headers=headers,
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.subject"
