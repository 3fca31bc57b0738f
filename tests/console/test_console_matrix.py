"""The cross-tenant matrix for the console: every console route (listed by the console itself),
called by every kind of signed-in caller, against tenant A's resources.

The same rules as tests/test_cross_tenant_matrix.py, through the browser's credential (the
session cookie and its CSRF token): a route with no Case here fails this test; after every call
that must not succeed, and after every call by tenant B's admin, A's rows are unchanged; and no
page B's admin gets holds any of A's identifiers. A caller with no session is sent to sign in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenantry.console import session as sessions
from tenantry.console.install import console_routes
from tests.console.helpers import console_client
from tests.test_cross_tenant_matrix import (
    LDAP_CONFIG,
    OIDC_CONFIG,
    Case,
    World,
    build_world,
    expected_status,
    fresh_email,
    isolation_failures,
    snapshot,
)

CALLERS = ("none", "a_viewer", "b_admin", "operator", "a_admin")
PASSWORD = "Another-Correct-Horse-7"


@dataclass
class Call:
    ok: int  # 200 for a page, 303 for an action that went on to its result, 201 "shown once"
    params: Callable[[World], dict[str, str]] = lambda w: {}
    query: dict[str, Any] = field(default_factory=dict)
    form: Callable[[World], dict[str, Any]] = lambda w: {}
    files: dict | None = None
    public_status: int | None = None
    other_tenant: int | None = None


def slug(w: World) -> dict[str, str]:
    return {"slug": w.a.slug}


CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/console"): Call(303, public_status=303),
    ("GET", "/console/login"): Call(200, public_status=200),
    # A wrong password: the same refusal, shown in the page, for whoever sends it.
    ("POST", "/console/login"): Call(
        401,
        form=lambda w: {"tenant": "no-such-org", "email": "nobody@example.com", "password": "x"},
        public_status=401,
    ),
    # B has no OIDC connection; A's has no sign-in with this state: shown on the sign-in page.
    ("GET", "/console/oidc/{tenant}/start"): Call(
        404, lambda w: {"tenant": w.b.slug}, public_status=404
    ),
    ("GET", "/console/oidc/{tenant}/callback"): Call(
        401,
        lambda w: {"tenant": w.a.slug},
        query={"code": "stolen-code", "state": "guessed-state"},
        public_status=401,
    ),
    ("POST", "/console/logout"): Call(303),
    ("POST", "/console/admin/logout"): Call(303),
    ("GET", "/console/setup"): Call(200, public_status=200),
    ("POST", "/console/setup"): Call(
        403,
        form=lambda w: {
            "token": "wrong",
            "email": fresh_email(),
            "name": "X",
            "password": PASSWORD,
        },
        public_status=403,
    ),
    ("GET", "/console/admin/tenants"): Call(200, query={"status": "active"}),
    ("POST", "/console/admin/tenants"): Call(
        303, form=lambda w: {"slug": f"c{w.a.slug[2:]}", "name": "New", "tier": "free"}
    ),
    ("GET", "/console/admin/tenants/{slug}"): Call(200, slug),
    ("POST", "/console/admin/tenants/{slug}/tier"): Call(
        303, slug, form=lambda w: {"tier": "free"}
    ),
    ("POST", "/console/admin/tenants/{slug}/suspend"): Call(303, slug),
    # Resuming an active tenant changes nothing and says so, as the API does.
    ("POST", "/console/admin/tenants/{slug}/resume"): Call(303, slug),
    ("POST", "/console/admin/tenants/{slug}/delete"): Call(
        303, slug, form=lambda w: {"confirm": w.a.slug}
    ),
    ("POST", "/console/admin/tenants/{slug}/users"): Call(
        303, slug, form=lambda w: {"email": fresh_email(), "password": PASSWORD, "role": "admin"}
    ),
    ("POST", "/console/admin/tenants/{slug}/limits"): Call(
        303, slug, form=lambda w: {"name": "users", "value": "9"}
    ),
    ("POST", "/console/admin/tenants/{slug}/config"): Call(
        303, slug, form=lambda w: {"path": "language", "value": "english"}
    ),
    ("POST", "/console/admin/tenants/{slug}/config/rollback"): Call(
        303, slug, form=lambda w: {"version": "1"}
    ),
    ("GET", "/console/admin/tenants/{slug}/config/diff"): Call(
        200, slug, query={"from": 0, "to": 1}
    ),
    ("GET", "/console/admin/tenants/{slug}/backups"): Call(200, slug),
    ("POST", "/console/admin/tenants/{slug}/backups"): Call(303, slug),
    ("POST", "/console/admin/tenants/{slug}/backups/{backup_id}/verify"): Call(
        200, lambda w: {"slug": w.a.slug, "backup_id": w.a_backup_id}
    ),
    ("GET", "/console/admin/tenants/{slug}/moves"): Call(200, slug),
    # A cell nobody registered: refused before anything is recorded (a real move is tested in
    # tests/cells/test_console_move.py).
    ("POST", "/console/admin/tenants/{slug}/moves"): Call(
        422, slug, form=lambda w: {"cell": "no-such-cell"}
    ),
    ("GET", "/console/admin/tenants/{slug}/health"): Call(200, slug),
    ("GET", "/console/admin/tenants/{slug}/deletion"): Call(200, slug),
    ("GET", "/console/admin/tenants/{slug}/audit"): Call(200, slug),
    ("GET", "/console/admin/tenants/{slug}/audit/verify"): Call(200, slug),
    ("GET", "/console/admin/tiers"): Call(200),
    ("GET", "/console/admin/operators"): Call(200),
    ("POST", "/console/admin/operators"): Call(
        303, form=lambda w: {"email": fresh_email("op"), "name": "Op", "password": PASSWORD}
    ),
    ("GET", "/console/admin/usage"): Call(200),
    ("GET", "/console/admin/usage.csv"): Call(200),
    ("GET", "/console/overview"): Call(200),
    ("GET", "/console/usage"): Call(200),
    ("GET", "/console/users"): Call(200),
    ("POST", "/console/users"): Call(
        303, form=lambda w: {"email": fresh_email(), "password": PASSWORD, "role": "member"}
    ),
    ("POST", "/console/users/{user_id}/role"): Call(
        303, lambda w: {"user_id": str(w.a_target_user.id)}, form=lambda w: {"role": "viewer"}
    ),
    ("POST", "/console/users/{user_id}/remove"): Call(
        303, lambda w: {"user_id": str(w.a_target_user.id)}
    ),
    ("GET", "/console/api-keys"): Call(200),
    ("POST", "/console/api-keys"): Call(201, form=lambda w: {"name": "k", "scopes": ["read"]}),
    ("POST", "/console/api-keys/{key_id}/revoke"): Call(
        303, lambda w: {"key_id": w.a_key_ids["read"]}
    ),
    ("GET", "/console/webhooks"): Call(200),
    ("POST", "/console/webhooks"): Call(
        201, form=lambda w: {"url": "http://127.0.0.1:9/new", "events": ["document.ready"]}
    ),
    ("GET", "/console/webhooks/{endpoint_id}"): Call(
        200, lambda w: {"endpoint_id": w.a_endpoint_id}
    ),
    ("POST", "/console/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Call(
        303, lambda w: {"endpoint_id": w.a_endpoint_id, "delivery_id": w.a_delivery_id}
    ),
    ("POST", "/console/webhooks/{endpoint_id}/delete"): Call(
        303, lambda w: {"endpoint_id": w.a_endpoint_id}
    ),
    ("GET", "/console/config"): Call(200),
    ("POST", "/console/config"): Call(303, form=lambda w: {"path": "language", "value": "simple"}),
    ("POST", "/console/config/rollback"): Call(303, form=lambda w: {"version": "0"}),
    # B has no version 1 of its own: the same 404 as the API's.
    ("GET", "/console/config/diff"): Call(200, query={"from": 0, "to": 1}, other_tenant=404),
    ("GET", "/console/sso"): Call(200),
    ("POST", "/console/sso"): Call(
        303,
        form=lambda w: {
            "server_url": LDAP_CONFIG["server_url"],
            "base_dn": LDAP_CONFIG["base_dn"],
            "bind_template": LDAP_CONFIG["bind_template"],
            "group_role_map": "{}",
            "default_role": "member",
            "enabled": "on",
        },
    ),
    # B has no directory settings to remove: the API's 404.
    ("POST", "/console/sso/delete"): Call(303, other_tenant=404),
    ("POST", "/console/sso/oidc"): Call(
        303,
        form=lambda w: {
            **{k: v for k, v in OIDC_CONFIG.items() if k != "role_map"},
            "allowed_domains": ",".join(OIDC_CONFIG["allowed_domains"]),
            "role_map": json.dumps(OIDC_CONFIG["role_map"]),
            "enabled": "on",
        },
    ),
    ("POST", "/console/sso/oidc/delete"): Call(303, other_tenant=404),
    ("GET", "/console/documents"): Call(200),
    ("GET", "/console/documents/status"): Call(200),
    ("POST", "/console/documents"): Call(
        303, files={"file": ("note.txt", b"Una nota nueva.", "text/plain")}
    ),
    ("GET", "/console/search"): Call(200, query={"q": "zanahoriaconfidencial"}),
    ("GET", "/console/incidents"): Call(200),
    ("POST", "/console/incidents"): Call(
        303, form=lambda w: {"title": "Printer", "description": "It jams."}
    ),
    ("GET", "/console/incidents/{number}"): Call(200, lambda w: {"number": w.a_waiting}),
    ("GET", "/console/incidents/{number}/status"): Call(200, lambda w: {"number": w.a_waiting}),
    ("POST", "/console/incidents/{number}/approve"): Call(303, lambda w: {"number": w.a_waiting}),
    ("POST", "/console/incidents/{number}/reject"): Call(303, lambda w: {"number": w.a_waiting}),
    ("POST", "/console/incidents/{number}/resolve"): Call(
        303, lambda w: {"number": w.a_waiting}, form=lambda w: {"resolution": "Fixed."}
    ),
}


def echoless(html: str, url: str, params: dict[str, str], permission: str) -> str:
    """The page less its own address and, on a public page (signing in), the organisation its
    caller named in the path, which the page offers back: an echo, not another tenant's data."""
    html = html.replace(url, "")
    if permission == "public":
        for value in params.values():
            html = html.replace(value, "")
    return html


def wanted(permission: str, call: Call, caller: str, has_params: bool) -> int:
    if caller == "none" and permission != "public":
        return 303  # to the sign-in page
    case = Case(call.ok, public_status=call.public_status, other_tenant=call.other_tenant)
    status = expected_status(permission, case, caller, has_params)
    assert status is not None
    return status


def cookies_for(app, world: World) -> dict[str, str]:
    """Each caller's console session, made from the tokens the API's logins handed out."""
    key = app.state.signing_key
    jar = {"none": sessions.encode(sessions.anonymous(), key)}
    for caller in CALLERS[1:]:
        token = world.headers[caller]["Authorization"].removeprefix("Bearer ")
        session = sessions.signed_in(
            kind="operator" if caller == "operator" else "user",
            access_token=token,
            access_seconds=3600,
            refresh_token=None,
            tenant=None
            if caller == "operator"
            else (world.b if caller == "b_admin" else world.a).slug,
        )
        jar[caller] = sessions.encode(session, key)
    return jar


async def test_every_console_route_for_every_caller(
    app, make_tenant, make_user, operator_headers, admin_sql, temporal_client, worker, db
):
    routes = console_routes()
    undescribed = sorted(f"{m} {p}" for m, p, _ in routes if (m, p) not in CALLS)
    unguarded = sorted(f"{m} {p}" for m, p, perm in routes if perm is None)
    assert not unguarded, f"console routes without a declared permission: {unguarded}"
    assert not undescribed, f"describe these console routes in CALLS: {undescribed}"

    failures: list[str] = []
    address = 0
    shared = None
    for method, path, permission in routes:
        call = CALLS[(method, path)]
        if method != "GET" or shared is None:
            async with console_client(app, address := address + 1) as client:
                world = await build_world(
                    client, make_tenant, make_user, operator_headers, temporal_client, db
                )
            if method == "GET":
                shared = world
        else:
            world = shared
        jar = cookies_for(app, world)
        url = path.format(**call.params(world))
        has_params = "{" in path
        expected = {c: wanted(permission, call, c, has_params) for c in CALLERS}
        for caller in sorted(CALLERS, key=lambda c: expected[c] < 400 and c != "none"):
            want = expected[caller]
            before = snapshot(admin_sql, world.a.id)
            async with console_client(app, address := address + 1) as client:
                client.cookies.set(sessions.COOKIE, jar[caller], path="/console")
                csrf = sessions.decode(jar[caller], app.state.signing_key).csrf
                if method == "GET":
                    response = await client.get(url, params=call.query)
                else:
                    response = await client.post(
                        url,
                        params=call.query,
                        data={"csrf_token": csrf, **call.form(world)},
                        files=call.files,
                    )
            label = f"{method} {path} as {caller}"
            if response.status_code != want:
                got = f"{response.status_code} (wanted {want}) {response.text[:300]}"
                failures.append(f"{label}: {got}")
                continue
            signed_out = caller == "none" and permission != "public"
            if signed_out and not response.headers["location"].startswith("/console/login"):
                failures.append(f"{label}: not sent to sign in")
            failures += isolation_failures(
                label,
                response.status_code,
                caller=caller,
                permission=permission,
                world=world,
                admin_sql=admin_sql,
                before=before,
                shown=echoless(response.text, url, call.params(world), permission),
            )
    assert not failures, "\n".join(failures)
