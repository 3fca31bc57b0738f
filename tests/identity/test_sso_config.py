"""Saving and removing either SSO connection: created, then updated in place, then removed, each
step audited with what it was and what it became, and never the OIDC client secret."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bearer, login
from tests.test_cross_tenant_matrix import LDAP_CONFIG, OIDC_CONFIG

CHANGED = {"ldap": ("base_dn", "dc=example,dc=com"), "oidc": ("client_id", "renamed-client")}


@pytest.mark.parametrize("source, connection", [("ldap", LDAP_CONFIG), ("oidc", OIDC_CONFIG)])
async def test_a_connection_is_created_updated_and_removed_with_an_audit_of_each(
    client, make_tenant, make_user, admin_sql, source, connection
):
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    headers = bearer((await login(client, tenant, owner))["access_token"])
    url = f"/v1/sso/{source}"
    field, value = CHANGED[source]
    for body in (connection, {**connection, field: value}):
        saved = await client.put(url, json=body, headers=headers)
        assert saved.status_code == 200, saved.text
    shown = await client.get(url, headers=headers)
    assert shown.json()[field] == value
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404

    rows = admin_sql.execute(
        "SELECT action, target, actor, before, after FROM audit_events "
        "WHERE tenant_id = %s AND action LIKE 'sso.%%' ORDER BY seq",
        [tenant.id],
    ).fetchall()
    assert [r[0] for r in rows] == [
        f"sso.{source}_configured",
        f"sso.{source}_configured",
        f"sso.{source}_removed",
    ]
    assert {r[1] for r in rows} == {f"sso:{source}"} and {r[2] for r in rows} == {
        f"user:{owner.email}"
    }
    (_, _, _, before, after), (_, _, _, before2, after2), (_, _, _, before3, after3) = rows
    assert before is None and after[field] == connection[field]
    assert before2 == after and after2[field] == value
    assert before3 == after2 and after3 is None
    assert OIDC_CONFIG["client_secret"] not in json.dumps([r[3:] for r in rows])
