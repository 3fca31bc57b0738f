"""SSO by LDAP against a real slapd on loopback, loaded with a few people and groups."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import textwrap
import threading

import pytest
from ldap3 import Connection, Server
from tenacity import Retrying, stop_after_delay, wait_fixed

from tests.concurrency.conftest import statuses
from tests.conftest import bearer, login
from tests.servers import free_port, require_binary, wait_for_line

SUFFIX = "dc=tenantry,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret-for-tests"
PEOPLE = {
    "ana": ("Ana Ruiz", "ana@chogar.example", "Ana-Directory-Pass-1"),
    "bruno": ("Bruno Diaz", "bruno@chogar.example", "Bruno-Directory-Pass-2"),
    "carla": ("Carla Gil", "carla@chogar.example", "Carla-Directory-Pass-3"),
    # An entry whose address is a local owner's: the takeover of issue 11.
    "mallory": ("Mallory Mora", "owner@chogar.example", "Mallory-Directory-Pass-4"),
}
GROUPS = {"it-admins": ["ana"], "staff": ["ana", "bruno"], "root": ["mallory"]}


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


def directory(url: str, group_role_map: dict[str, str]) -> dict:
    return {
        "server_url": url,
        "base_dn": SUFFIX,
        "bind_template": f"uid={{username}},ou=people,{SUFFIX}",
        "group_role_map": group_role_map,
    }


@pytest.fixture
async def tenant_with_ldap(client, slapd, make_tenant, make_user):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    config = directory(slapd, {"it-admins": "admin", "staff": "member"})
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


def role_of(admin_sql, tenant, email: str):
    return admin_sql.execute(
        "SELECT id, role, auth_source FROM users WHERE tenant_id = %s AND email = %s",
        [tenant.id, email],
    ).fetchone()


async def test_a_directory_entry_with_the_owner_address_never_becomes_the_owner(
    client, slapd, make_tenant, make_user, admin_sql
):
    """The takeover of issue 11: an admin points the tenant at a directory whose entry carries
    the owner's address, in a group mapped as high as they may."""
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner", email="owner@chogar.example")
    admin = await make_user(tenant, "admin")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    to_owner = await client.put(
        "/v1/sso/ldap", json=directory(slapd, {"root": "owner"}), headers=headers
    )
    assert to_owner.status_code == 403  # nobody maps a group above their own role
    for mapped in ("admin", "viewer"):
        put = await client.put(
            "/v1/sso/ldap", json=directory(slapd, {"root": mapped}), headers=headers
        )
        assert put.status_code == 200, put.text
        taken = await ldap_login(client, tenant, "mallory", PEOPLE["mallory"][2])
        assert taken.status_code == 409 and taken.json()["type"].endswith("/sso-not-linked")
        assert role_of(admin_sql, tenant, owner.email) == (owner.id, "owner", "local")
    assert admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'ldap'", [tenant.id]
    ).fetchone() == (0,)


async def test_mapped_roles_are_capped_at_the_configurer_rank_now(
    client, slapd, make_tenant, make_user, admin_sql
):
    tenant = await make_tenant()
    first, second = await make_user(tenant, "owner"), await make_user(tenant, "owner")
    first_headers = bearer((await login(client, tenant, first))["access_token"])
    put = await client.put(
        "/v1/sso/ldap", json=directory(slapd, {"it-admins": "owner"}), headers=first_headers
    )
    assert put.status_code == 200, put.text
    second_headers = bearer((await login(client, tenant, second))["access_token"])
    demoted = await client.patch(
        f"/v1/users/{first.id}", json={"role": "admin"}, headers=second_headers
    )
    assert demoted.status_code == 200
    ana = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    assert ana.status_code == 200, ana.text
    assert role_of(admin_sql, tenant, "ana@chogar.example")[1] == "admin"


async def test_a_directory_remap_never_leaves_the_tenant_without_an_owner(
    client, slapd, make_tenant, make_user, admin_sql
):
    tenant = await make_tenant()
    local = await make_user(tenant, "owner")
    local_headers = bearer((await login(client, tenant, local))["access_token"])
    config = directory(slapd, {"it-admins": "owner"})
    assert (await client.put("/v1/sso/ldap", json=config, headers=local_headers)).status_code == 200
    ana = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    ana_headers = bearer(ana.json()["access_token"])
    removed = await client.delete(f"/v1/users/{local.id}", headers=ana_headers)
    assert removed.status_code == 204  # ana, from the directory, is now the only owner
    config["group_role_map"] = {"it-admins": "viewer"}
    assert (await client.put("/v1/sso/ldap", json=config, headers=ana_headers)).status_code == 200
    again = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    assert again.status_code == 200
    assert role_of(admin_sql, tenant, "ana@chogar.example")[1] == "owner"


async def test_a_first_sign_in_takes_a_place_in_the_users_quota(
    client, tenant_with_ldap, operator_headers, admin_sql
):
    tenant, _, _ = tenant_with_ldap
    full = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits", json={"users": 1}, headers=operator_headers
    )
    assert full.status_code == 200, full.text
    bruno = await ldap_login(client, tenant, "bruno", PEOPLE["bruno"][2])
    assert bruno.status_code == 403 and bruno.json()["type"].endswith("/quota-exhausted")
    assert role_of(admin_sql, tenant, "bruno@chogar.example") is None


async def test_sign_ins_at_once_take_the_last_place_once(
    client, tenant_with_ldap, operator_headers, admin_sql
):
    """Two people and two sign-ins each, at once, for one free place: one person gets it, and
    both of their sign-ins succeed (the second finds the account the first created)."""
    tenant, _, _ = tenant_with_ldap
    room = await client.patch(
        f"/v1/admin/tenants/{tenant.slug}/limits", json={"users": 2}, headers=operator_headers
    )
    assert room.status_code == 200, room.text
    people = ["ana", "bruno", "ana", "bruno"]
    answers = await asyncio.gather(
        *(ldap_login(client, tenant, who, PEOPLE[who][2]) for who in people)
    )
    by_person = {
        who: sorted(a.status_code for p, a in zip(people, answers, strict=True) if p == who)
        for who in set(people)
    }
    assert sorted(by_person.values()) == [[200, 200], [403, 403]], by_person
    created = admin_sql.execute(
        "SELECT count(*) FROM users WHERE tenant_id = %s AND auth_source = 'ldap'", [tenant.id]
    ).fetchone()[0]
    assert created == 1


def sso_timeout(app, seconds: float, monkeypatch) -> None:
    """The app's settings with another SSO timeout, for this test only."""
    changed = app.state.settings.model_copy(update={"sso_timeout_seconds": seconds})
    monkeypatch.setitem(app.state._state, "settings", changed)


class SilentDirectory:
    """Accepts TCP connections and never answers; counts what it accepted."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ldap://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.accepted = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.accepted:
                self.held.append(conn)
                self.accepted.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.accepted:
            return self.accepted.wait_for(lambda: len(self.held) >= count, timeout=60)

    def close(self) -> None:
        self.listener.close()
        with self.accepted:
            for conn in self.held:
                conn.close()


async def test_a_directory_that_never_answers_holds_neither_the_pool_nor_other_tenants(
    client, app, slapd, tenant_with_ldap, make_tenant, make_user, monkeypatch, admin_sql
):
    # Long enough that nothing here times out: the silent directory is closed at the end.
    sso_timeout(app, 60, monkeypatch)
    silent = SilentDirectory()
    stuck = await make_tenant()
    stuck_admin = await make_user(stuck, "admin")
    stuck_headers = bearer((await login(client, stuck, stuck_admin))["access_token"])
    put = await client.put(
        "/v1/sso/ldap", json=directory(silent.url, {"staff": "member"}), headers=stuck_headers
    )
    assert put.status_code == 200, put.text
    other, other_headers, _ = tenant_with_ldap
    settings = app.state.settings
    more_than_the_pool = settings.db_pool_size + settings.db_max_overflow + 5
    logins = [
        asyncio.create_task(ldap_login(client, stuck, f"user{i}", "Some-Password-1"))
        for i in range(more_than_the_pool)
    ]
    try:
        assert await asyncio.to_thread(silent.wait_for, app.state.egress_gate.per_tenant)
        served = await asyncio.gather(
            ldap_login(client, other, "ana", PEOPLE["ana"][2]),
            ldap_login(client, other, "bruno", PEOPLE["bruno"][2]),
            *(client.get("/v1/users", headers=other_headers) for _ in range(10)),
        )
        assert statuses(served) == {200: 12}
        # ...while the stuck tenant's logins are still waiting on its directory.
        assert any(not task.done() for task in logins)
    finally:
        silent.close()
        answers = await asyncio.gather(*logins)
    assert set(statuses(answers)) <= {503, 504}
    busy = [a for a in answers if a.json()["type"].endswith("/outbound-busy")]
    assert len(busy) >= more_than_the_pool - app.state.egress_gate.per_tenant
    assert len(silent.held) <= app.state.egress_gate.per_tenant


async def test_a_directory_that_does_not_answer_in_time_is_a_504(
    client, app, make_tenant, make_user, monkeypatch
):
    sso_timeout(app, 1, monkeypatch)
    silent = SilentDirectory()
    try:
        tenant = await make_tenant()
        admin = await make_user(tenant, "admin")
        headers = bearer((await login(client, tenant, admin))["access_token"])
        await client.put(
            "/v1/sso/ldap", json=directory(silent.url, {"staff": "member"}), headers=headers
        )
        late = await ldap_login(client, tenant, "ana", PEOPLE["ana"][2])
    finally:
        silent.close()
    assert late.status_code == 504 and late.json()["type"].endswith("/upstream-timeout")


async def test_a_directory_on_a_private_address_is_refused(client, tenant_with_ldap):
    _, headers, config = tenant_with_ldap
    for url in ("ldap://10.0.0.5", "ldap://169.254.169.254:389", "ldap://[::ffff:127.0.0.2]"):
        refused = await client.put(
            "/v1/sso/ldap", json={**config, "server_url": url}, headers=headers
        )
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["type"].endswith("/forbidden-egress-target")
