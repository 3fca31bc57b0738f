"""Single sign-on (LDAP and OIDC) for a tenant placed in another cell: the tenant is found on
the control plane, and its users, identities, sessions and audit are written in its cell."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from tests.cells.conftest import cell_admin_url, count_rows
from tests.cells.test_routing import moved
from tests.conftest import bearer
from tests.identity.oidc_servers import set_person
from tests.identity.test_ldap import PEOPLE, ldap_login, slapd, tenant_with_ldap  # noqa: F401
from tests.identity.test_oidc import connect, issuers, person, sign_in  # noqa: F401


def audit_actions(url: str, tenant_id) -> list[str]:
    import psycopg

    from tenantry.db.urls import libpq_dsn

    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT action FROM audit_events WHERE tenant_id = %s ORDER BY seq", [tenant_id]
        ).fetchall()
    return [action for (action,) in rows]


async def test_ldap_sign_in_of_a_tenant_in_another_cell_writes_there(
    client,
    db,
    settings,
    stack,
    cell_b,
    tenant_with_ldap,  # noqa: F811
):
    tenant, _, _ = tenant_with_ldap
    await moved(db, settings, tenant, cell_b)
    main, cell = stack.admin_url, cell_admin_url(stack, cell_b)

    ana = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    assert ana.status_code == 200, ana.text
    me = (await client.get("/v1/me", headers=bearer(ana.json()["access_token"]))).json()
    assert (me["tenant"], me["name"], me["role"]) == (tenant.slug, "ana@chogar.example", "admin")
    assert count_rows(cell, "user_identities", tenant.id) == 1
    assert count_rows(main, "user_identities", tenant.id) == 0
    assert count_rows(main, "refresh_tokens", tenant.id) == 0
    # A wrong password is refused as anywhere, and recorded in the tenant's own chain.
    wrong = await ldap_login(client, tenant, "ana", "Not-Her-Password-1")
    assert wrong.status_code == 401, wrong.text
    actions = audit_actions(cell, tenant.id)
    assert "login.sso" in actions and actions[-1] == "login.failed"
    assert audit_actions(main, tenant.id) == []


async def test_ldap_answers_an_unknown_tenant_as_a_wrong_password(client):
    nobody = SimpleNamespace(slug=f"none-{uuid.uuid4().hex[:8]}")
    answer = await ldap_login(client, nobody, "ana", PEOPLE["ana"][2])
    assert answer.status_code == 401 and answer.json()["type"].endswith("/unauthorized")


async def test_oidc_sign_in_of_a_tenant_in_another_cell_writes_there(
    client,
    db,
    settings,
    stack,
    cell_b,
    make_tenant,
    make_user,
    issuers,  # noqa: F811
):
    tenant, _, _ = await connect(client, make_tenant, make_user, issuers[0])
    await moved(db, settings, tenant, cell_b)
    main, cell = stack.admin_url, cell_admin_url(stack, cell_b)
    sub = f"cell-{uuid.uuid4().hex[:6]}"
    await set_person(issuers[0], sub, **person(f"{sub}@acme.example", ["eng-admins"]))

    signed = await sign_in(client, tenant, sub)
    assert signed.status_code == 200, signed.text
    me = (await client.get("/v1/me", headers=bearer(signed.json()["access_token"]))).json()
    assert (me["tenant"], me["name"], me["role"]) == (tenant.slug, f"{sub}@acme.example", "admin")
    assert count_rows(cell, "user_identities", tenant.id) == 1
    assert count_rows(main, "user_identities", tenant.id) == 0
    # The sign-in in flight was stored in the cell and taken there: a replay finds nothing.
    assert count_rows(main, "oidc_logins", tenant.id) == 0
    again = await sign_in(client, tenant, sub)
    assert again.status_code == 200, again.text
    assert count_rows(cell, "users", tenant.id) == 2  # the owner and this one person
    # An unknown tenant answers as one without a connection.
    unknown = await client.get(f"/v1/auth/oidc/none-{uuid.uuid4().hex[:8]}/start")
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/oidc-not-configured")
