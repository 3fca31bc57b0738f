"""SSO by LDAP against a real slapd on loopback, loaded with a few people and groups."""

from __future__ import annotations

import subprocess
import textwrap
import threading

import pytest
from ldap3 import Connection, Server
from tenacity import Retrying, stop_after_delay, wait_fixed

from tests.conftest import bearer, login
from tests.servers import free_port, require_binary, wait_for_line

SUFFIX = "dc=tenantry,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret-for-tests"
PEOPLE = {
    "ana": ("Ana Ruiz", "ana@chogar.example", "Ana-Directory-Pass-1"),
    "bruno": ("Bruno Diaz", "bruno@chogar.example", "Bruno-Directory-Pass-2"),
    "carla": ("Carla Gil", "carla@chogar.example", "Carla-Directory-Pass-3"),
}
GROUPS = {"it-admins": ["ana"], "staff": ["ana", "bruno"]}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    binary = require_binary("slapd", "slapd", "ldap-utils")
    workdir = tmp_path_factory.mktemp("slapd")
    (workdir / "data").mkdir()
    conf = workdir / "slapd.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            pidfile {workdir}/slapd.pid
            modulepath /usr/lib/ldap
            moduleload back_mdb
            database mdb
            maxsize 10485760
            suffix "{SUFFIX}"
            rootdn "{ROOT_DN}"
            rootpw {ROOT_PW}
            directory {workdir}/data
            """
        )
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "-f", str(conf), "-h", f"{url}/", "-d", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(proc, "slapd starting")
        # Keep draining its log so slapd never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        _load(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _load(url: str, proc: subprocess.Popen) -> None:
    # Seen once right after apt-get installed slapd: it logged "slapd starting" and refused the
    # first connection. Bind until it answers, for as long as it is alive.
    for attempt in Retrying(stop=stop_after_delay(15), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            assert proc.poll() is None, f"slapd exited with {proc.returncode}"
            conn = Connection(Server(url), user=ROOT_DN, password=ROOT_PW, auto_bind=True)
    conn.add(SUFFIX, ["dcObject", "organization"], {"o": "Tenantry test", "dc": "tenantry"})
    conn.add(f"ou=people,{SUFFIX}", ["organizationalUnit"], {"ou": "people"})
    conn.add(f"ou=groups,{SUFFIX}", ["organizationalUnit"], {"ou": "groups"})
    for uid, (name, mail, password) in PEOPLE.items():
        assert conn.add(
            f"uid={uid},ou=people,{SUFFIX}",
            ["inetOrgPerson"],
            {
                "cn": name,
                "sn": name.split()[-1],
                "mail": mail,
                "userPassword": password,
                "displayName": name,
            },
        ), conn.result
    for group, members in GROUPS.items():
        assert conn.add(
            f"cn={group},ou=groups,{SUFFIX}",
            ["groupOfNames"],
            {"cn": group, "member": [f"uid={m},ou=people,{SUFFIX}" for m in members]},
        ), conn.result
    conn.unbind()


@pytest.fixture
async def tenant_with_ldap(client, slapd, make_tenant, make_user):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    config = {
        "server_url": slapd,
        "base_dn": SUFFIX,
        "bind_template": f"uid={{username}},ou=people,{SUFFIX}",
        "group_role_map": {"it-admins": "admin", "staff": "member"},
    }
    response = await client.put("/v1/sso/ldap", json=config, headers=headers)
    assert response.status_code == 200, response.text
    return tenant, headers, config


async def ldap_login(client, tenant, username, password):
    return await client.post(
        "/v1/auth/ldap", json={"tenant": tenant.slug, "username": username, "password": password}
    )


async def test_a_bind_creates_the_user_with_the_mapped_role(client, tenant_with_ldap, admin_sql):
    tenant, _, _ = tenant_with_ldap
    ana = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    assert ana.status_code == 200, ana.text
    me = (await client.get("/v1/me", headers=bearer(ana.json()["access_token"]))).json()
    assert (me["name"], me["role"]) == ("ana@chogar.example", "admin")
    bruno = await ldap_login(client, tenant, "bruno", PEOPLE["bruno"][2])
    assert (await client.get("/v1/me", headers=bearer(bruno.json()["access_token"]))).json()[
        "role"
    ] == "member"
    row = admin_sql.execute(
        "SELECT auth_source, password_hash, display_name FROM users WHERE tenant_id = %s AND email = %s",
        [tenant.id, "ana@chogar.example"],
    ).fetchone()
    assert row == ("ldap", None, "Ana Ruiz")


async def test_a_new_mapping_updates_the_role_on_the_next_login(client, tenant_with_ldap):
    tenant, headers, config = tenant_with_ldap
    await ldap_login(client, tenant, "bruno", PEOPLE["bruno"][2])
    config["group_role_map"] = {"it-admins": "admin", "staff": "viewer"}
    assert (await client.put("/v1/sso/ldap", json=config, headers=headers)).status_code == 200
    again = await ldap_login(client, tenant, "bruno", PEOPLE["bruno"][2])
    assert (await client.get("/v1/me", headers=bearer(again.json()["access_token"]))).json()[
        "role"
    ] == "viewer"


async def test_wrong_password_unknown_user_and_injection_are_refused(client, tenant_with_ldap):
    tenant, _, _ = tenant_with_ldap
    assert (await ldap_login(client, tenant, "ana", "Not-Her-Password-1")).status_code == 401
    assert (await ldap_login(client, tenant, "nobody", "Whatever-Pass-1")).status_code == 401
    assert (await ldap_login(client, tenant, "ana,ou=people", PEOPLE["ana"][2])).status_code == 401
    assert (await ldap_login(client, tenant, "*", PEOPLE["ana"][2])).status_code == 401


async def test_a_person_in_no_mapped_group_gets_no_account(client, tenant_with_ldap, admin_sql):
    tenant, _, _ = tenant_with_ldap
    carla = await ldap_login(client, tenant, "carla", PEOPLE["carla"][2])
    assert carla.status_code == 403 and carla.json()["type"].endswith("/sso-no-role")
    count = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s AND email = 'carla@chogar.example'",
        [tenant.id],
    ).fetchone()[0]
    assert count == 0


async def test_an_unreachable_directory_is_503_and_other_tenants_are_unaffected(
    client, tenant_with_ldap, make_tenant
):
    tenant, headers, config = tenant_with_ldap
    config["server_url"] = f"ldap://127.0.0.1:{free_port()}"
    await client.put("/v1/sso/ldap", json=config, headers=headers)
    down = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    assert down.status_code == 503
    other = await make_tenant()
    assert (await ldap_login(client, other, "ana", PEOPLE["ana"][2])).status_code == 401


async def test_ldap_settings_are_validated(client, tenant_with_ldap):
    _, headers, config = tenant_with_ldap
    bad = await client.put(
        "/v1/sso/ldap", json={**config, "bind_template": "uid=fixed"}, headers=headers
    )
    assert bad.status_code == 422 and "body.bind_template" in bad.json()["detail"]
    bad_role = await client.put(
        "/v1/sso/ldap", json={**config, "group_role_map": {"x": "god"}}, headers=headers
    )
    assert bad_role.status_code == 422
