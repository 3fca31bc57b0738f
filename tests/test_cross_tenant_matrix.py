"""The cross-tenant matrix: every route in the OpenAPI schema, called by every kind of caller,
against resources of tenant A.

Each route declares its permission (`x-permission`, published by `guard`). From it the matrix
derives the status each caller must get; a route describes here only how to call it (path
parameters, body, success status). A route with no description fails this test, so a route added
later is covered without editing the rules, and one that cannot be exercised is noticed.
After every call that must not succeed, and after every call made as tenant B, tenant A's rows are
compared with a snapshot taken before, and B's answer must not contain any of A's identifiers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from httpx import ASGITransport, AsyncClient

from tenantry.identity.permissions import ROLE_PERMISSIONS, SCOPE_PERMISSIONS, Permission
from tenantry.ops.models import Restore
from tenantry.ops.service import take_backup
from tenantry.ops.store import BackupStore
from tenantry.settings import get_settings
from tests.conftest import PASSWORD, bearer, unique_slug
from tests.workflows import started

CALLERS = ("none", "a_viewer", "a_key_without_scope", "b_admin", "operator", "a_admin")
VOLATILE_COLUMNS = {"last_used_at", "last_login_at"}  # authenticating may touch these, nothing else
# The platform meters A's own requests in the background; those counts are not B's doing.
VOLATILE_TABLES = {"usage_daily", "slo_hourly"}


@dataclass
class World:
    a: Any
    b: Any
    a_target_user: Any
    a_key_ids: dict[str, str]
    a_document_id: str
    a_waiting: str  # an incident of A awaiting approval
    a_resolved: str  # an incident of A already resolved
    a_endpoint_id: str
    a_delivery_id: str
    a_identity_id: str  # an LDAP identity linked to a_target_user
    headers: dict[str, dict[str, str]]
    a_identifiers: set[str]
    a_backup_id: str = ""  # a finished backup of A
    a_restore_id: str = ""  # a finished restore of A, from that backup
    a_move_id: str = ""  # a finished move of A
    cell: str = ""  # a cell A is not in


@dataclass
class Case:
    ok: int
    params: Callable[[World], dict[str, str]] = lambda w: {}
    query: dict[str, Any] = field(default_factory=dict)
    files: Callable[[World], dict] | None = None  # multipart uploads
    body: Callable[[World], Any] = lambda w: None
    public_status: int | None = None  # public routes: every caller gets this
    other_tenant: int | None = None  # what tenant B's admin gets, when not the default
    notes: str = ""


A_SECRET_WORD = "zanahoriaconfidencial"


def fresh_email(prefix: str = "new") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def user_param(w: World) -> dict[str, str]:
    return {"user_id": str(w.a_target_user.id)}


def key_param(w: World) -> dict[str, str]:
    return {"key_id": w.a_key_ids["read"]}


def slug_param(w: World) -> dict[str, str]:
    return {"slug": w.a.slug}


# Lists are called a page at a time, as clients do.
PAGE = {"limit": 2}


def backup_param(w: World) -> dict[str, str]:
    return {"slug": w.a.slug, "backup_id": w.a_backup_id}


def restore_param(w: World) -> dict[str, str]:
    return {"slug": w.a.slug, "restore_id": w.a_restore_id}


LDAP_CONFIG = {
    "server_url": "ldap://127.0.0.1:1",
    "base_dn": "dc=example,dc=org",
    "bind_template": "uid={username},dc=example,dc=org",
    "group_role_map": {"staff": "member"},
}

OIDC_CONFIG = {
    "issuer": "https://idp.example.com",
    "client_id": "tenantry-matrix",
    "client_secret": "matrix-client-secret",
    "allowed_domains": ["example.com"],
    "role_claim": "groups",
    "role_map": {"staff": "member"},
}


def identity_params(w: World) -> dict[str, str]:
    return {"user_id": str(w.a_target_user.id), "identity_id": w.a_identity_id}


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/health/live"): Case(200, public_status=200),
    ("GET", "/health/ready"): Case(200, public_status=200),
    ("GET", "/health/detailed"): Case(200, public_status=200),
    ("POST", "/v1/auth/login"): Case(
        401,
        public_status=401,
        body=lambda w: {
            "tenant": w.a.slug,
            "email": fresh_email("guess"),
            "password": "Wrong-Pass-123",
        },
    ),
    ("POST", "/v1/auth/ldap"): Case(
        401,
        public_status=401,
        body=lambda w: {"tenant": w.b.slug, "username": fresh_email(), "password": "y"},
    ),
    ("POST", "/v1/auth/refresh"): Case(
        401, public_status=401, body=lambda w: {"refresh_token": "tnrt_x"}
    ),
    ("POST", "/v1/admin/auth/login"): Case(
        401,
        public_status=401,
        body=lambda w: {"email": fresh_email("ops"), "password": "Wrong-Pass-123"},
    ),
    ("POST", "/v1/auth/logout"): Case(204),
    ("GET", "/v1/me"): Case(200),
    ("GET", "/v1/users"): Case(200, query=PAGE),
    ("POST", "/v1/users"): Case(201, body=lambda w: {"email": fresh_email(), "password": PASSWORD}),
    ("GET", "/v1/users/{user_id}"): Case(200, params=user_param),
    ("PATCH", "/v1/users/{user_id}"): Case(
        200, params=user_param, body=lambda w: {"role": "viewer"}
    ),
    ("DELETE", "/v1/users/{user_id}"): Case(204, params=user_param),
    ("GET", "/v1/api-keys"): Case(200, query=PAGE),
    ("POST", "/v1/api-keys"): Case(201, body=lambda w: {"name": "matrix", "scopes": ["read"]}),
    ("GET", "/v1/api-keys/{key_id}"): Case(200, params=key_param),
    ("DELETE", "/v1/api-keys/{key_id}"): Case(200, params=key_param),
    ("GET", "/v1/sso/ldap"): Case(200, other_tenant=404),
    ("PUT", "/v1/sso/ldap"): Case(200, body=lambda w: LDAP_CONFIG),
    ("DELETE", "/v1/sso/ldap"): Case(204, other_tenant=404),
    ("GET", "/v1/sso/oidc"): Case(200, other_tenant=404),
    ("PUT", "/v1/sso/oidc"): Case(200, body=lambda w: OIDC_CONFIG),
    ("DELETE", "/v1/sso/oidc"): Case(204, other_tenant=404),
    # B has no OIDC connection; A's has no sign-in with this state.
    ("GET", "/v1/auth/oidc/{tenant}/start"): Case(
        404, public_status=404, params=lambda w: {"tenant": w.b.slug}
    ),
    ("GET", "/v1/auth/oidc/{tenant}/callback"): Case(
        401,
        public_status=401,
        params=lambda w: {"tenant": w.a.slug},
        query={"code": "stolen-code", "state": "guessed-state"},
    ),
    ("GET", "/v1/users/{user_id}/identities"): Case(200, params=user_param, query=PAGE),
    ("POST", "/v1/users/{user_id}/identities"): Case(
        201,
        params=user_param,
        body=lambda w: {
            "source": "ldap",
            "subject": f"uid=m-{uuid.uuid4().hex[:8]},dc=example,dc=org",
        },
    ),
    ("DELETE", "/v1/users/{user_id}/identities/{identity_id}"): Case(204, params=identity_params),
    ("GET", "/v1/admin/tenants"): Case(200, query=PAGE),
    ("POST", "/v1/admin/tenants"): Case(
        201, body=lambda w: {"slug": unique_slug("mx"), "name": "M"}
    ),
    ("GET", "/v1/admin/tenants/{slug}"): Case(200, params=slug_param),
    ("PATCH", "/v1/admin/tenants/{slug}"): Case(
        200, params=slug_param, body=lambda w: {"name": "Renamed"}
    ),
    ("DELETE", "/v1/admin/tenants/{slug}"): Case(200, params=slug_param),
    ("POST", "/v1/admin/tenants/{slug}/suspend"): Case(200, params=slug_param),
    ("POST", "/v1/admin/tenants/{slug}/resume"): Case(200, params=slug_param),
    ("GET", "/v1/admin/tenants/{slug}/audit"): Case(200, params=slug_param, query=PAGE),
    ("GET", "/v1/admin/tenants/{slug}/audit/verify"): Case(200, params=slug_param),
    ("POST", "/v1/admin/tenants/{slug}/backups"): Case(202, params=slug_param),
    ("GET", "/v1/admin/tenants/{slug}/backups"): Case(200, params=slug_param, query=PAGE),
    ("GET", "/v1/admin/tenants/{slug}/backups/{backup_id}"): Case(200, params=backup_param),
    ("POST", "/v1/admin/tenants/{slug}/backups/{backup_id}/verify"): Case(200, params=backup_param),
    ("POST", "/v1/admin/tenants/{slug}/restores"): Case(
        202, params=slug_param, body=lambda w: {"backup_id": w.a_backup_id}
    ),
    ("POST", "/v1/admin/tenants/{slug}/clones"): Case(
        202,
        params=slug_param,
        body=lambda w: {"backup_id": w.a_backup_id, "slug": unique_slug("clone")},
    ),
    ("GET", "/v1/admin/tenants/{slug}/restores/{restore_id}"): Case(200, params=restore_param),
    ("POST", "/v1/admin/tenants/{slug}/moves"): Case(
        202, params=slug_param, body=lambda w: {"cell": w.cell}
    ),
    ("GET", "/v1/admin/tenants/{slug}/moves"): Case(200, params=slug_param, query=PAGE),
    ("GET", "/v1/admin/tenants/{slug}/moves/{move_id}"): Case(
        200, params=lambda w: {"slug": w.a.slug, "move_id": w.a_move_id}
    ),
    ("GET", "/v1/admin/cells"): Case(200),
    ("POST", "/v1/admin/cells"): Case(
        201, body=lambda w: {"name": f"mx-{(h := uuid.uuid4().hex[:8])}", "database": f"mx_{h}"}
    ),
    ("POST", "/v1/admin/tenants/{slug}/users"): Case(
        201,
        params=slug_param,
        body=lambda w: {"email": fresh_email("first"), "password": PASSWORD, "role": "owner"},
    ),
    ("GET", "/v1/admin/operators"): Case(200, query=PAGE),
    ("POST", "/v1/admin/operators"): Case(
        201, body=lambda w: {"email": fresh_email("op"), "name": "Op", "password": PASSWORD}
    ),
    ("GET", "/v1/admin/tenants/{slug}/limits"): Case(200, params=slug_param),
    ("PATCH", "/v1/admin/tenants/{slug}/limits"): Case(
        200, params=slug_param, body=lambda w: {"requests_per_minute": 500}
    ),
    ("GET", "/v1/admin/usage"): Case(200, query={"format": "csv"}),
    ("GET", "/v1/admin/tiers"): Case(200, query=PAGE),
    ("GET", "/v1/admin/tiers/{tier}/config"): Case(200, params=lambda w: {"tier": "free"}),
    ("GET", "/v1/admin/tiers/{tier}/config/versions"): Case(
        200, params=lambda w: {"tier": "free"}, query=PAGE
    ),
    # Tier templates are shared by every test: these leave the effective values as they were.
    ("PATCH", "/v1/admin/tiers/{tier}/config"): Case(
        200,
        params=lambda w: {"tier": "free"},
        body=lambda w: {"branding": {"accent_color": "#f78166"}},
    ),
    ("POST", "/v1/admin/tiers/{tier}/config/rollback"): Case(
        200, params=lambda w: {"tier": "free"}, body=lambda w: {"version": 0}
    ),
    ("GET", "/v1/config"): Case(200),
    ("PATCH", "/v1/config"): Case(200, body=lambda w: {"branding": {"display_name": "Matrix"}}),
    ("GET", "/v1/config/versions"): Case(200, query=PAGE),
    ("GET", "/v1/config/versions/{version}"): Case(200, params=lambda w: {"version": "1"}),
    ("GET", "/v1/config/diff"): Case(200, query={"from": 0, "to": 1}, other_tenant=404),
    ("POST", "/v1/config/rollback"): Case(200, body=lambda w: {"version": 0}),
    ("GET", "/v1/usage"): Case(200),
    ("GET", "/v1/slo"): Case(200),
    ("GET", "/v1/admin/tenants/{slug}/slo"): Case(200, params=slug_param),
    ("POST", "/v1/documents"): Case(
        202, body=lambda w: {"title": "Matrix", "text": f"matrix document {uuid.uuid4().hex}"}
    ),
    ("POST", "/v1/documents/upload"): Case(
        202,
        files=lambda w: {"file": ("m.txt", f"upload {uuid.uuid4().hex}".encode(), "text/plain")},
    ),
    ("GET", "/v1/documents"): Case(200, query=PAGE),
    ("GET", "/v1/documents/{document_id}"): Case(
        200, params=lambda w: {"document_id": w.a_document_id}
    ),
    ("DELETE", "/v1/documents/{document_id}"): Case(
        204, params=lambda w: {"document_id": w.a_document_id}
    ),
    ("POST", "/v1/search"): Case(200, body=lambda w: {"query": A_SECRET_WORD}),
    ("POST", "/v1/incidents"): Case(
        201, body=lambda w: {"title": "Matrix", "description": "Incident"}
    ),
    ("GET", "/v1/incidents"): Case(200, query=PAGE),
    ("GET", "/v1/incidents/{number}"): Case(200, params=lambda w: {"number": w.a_waiting}),
    ("GET", "/v1/incidents/{number}/workflow"): Case(200, params=lambda w: {"number": w.a_waiting}),
    ("POST", "/v1/incidents/{number}/approve"): Case(202, params=lambda w: {"number": w.a_waiting}),
    ("POST", "/v1/incidents/{number}/reject"): Case(202, params=lambda w: {"number": w.a_waiting}),
    ("POST", "/v1/incidents/{number}/resolve"): Case(
        202,
        params=lambda w: {"number": w.a_waiting},
        body=lambda w: {"resolution": "Fixed by the matrix."},
    ),
    ("POST", "/v1/incidents/{number}/close"): Case(200, params=lambda w: {"number": w.a_resolved}),
    ("POST", "/v1/incidents/{number}/reopen"): Case(200, params=lambda w: {"number": w.a_resolved}),
    ("POST", "/v1/webhooks"): Case(201, body=lambda w: {"url": "http://127.0.0.1:9/matrix"}),
    ("GET", "/v1/webhooks"): Case(200, query=PAGE),
    ("GET", "/v1/webhooks/{endpoint_id}"): Case(
        200, params=lambda w: {"endpoint_id": w.a_endpoint_id}
    ),
    ("PATCH", "/v1/webhooks/{endpoint_id}"): Case(
        200, params=lambda w: {"endpoint_id": w.a_endpoint_id}, body=lambda w: {"active": False}
    ),
    ("DELETE", "/v1/webhooks/{endpoint_id}"): Case(
        204, params=lambda w: {"endpoint_id": w.a_endpoint_id}
    ),
    ("GET", "/v1/webhooks/{endpoint_id}/deliveries"): Case(
        200, params=lambda w: {"endpoint_id": w.a_endpoint_id}, query=PAGE
    ),
    ("POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): Case(
        202, params=lambda w: {"endpoint_id": w.a_endpoint_id, "delivery_id": w.a_delivery_id}
    ),
    # Only keys of scope `external` pass; no caller of the matrix holds one (tested apart).
    ("POST", "/v1/external/incidents"): Case(
        201, body=lambda w: {"title": "x", "description": "y", "reporter": "erp"}
    ),
    ("GET", "/v1/external/knowledge/search"): Case(200, query={"q": A_SECRET_WORD}),
}


def expected_status(permission: str, case: Case, caller: str, has_path_params: bool) -> int | None:
    """What `caller` must get; None when the caller does not apply (no key lacks the permission)."""
    if permission == "public":
        return case.public_status
    if caller == "none":
        return 401
    if permission.startswith("operator"):
        return case.ok if caller == "operator" else 403
    if caller == "operator":
        return 403
    needed = Permission(permission)
    if caller == "a_key_without_scope":
        return 403 if lacking_scope(needed) else None
    if caller == "b_admin":
        if needed not in ROLE_PERMISSIONS["admin"]:
            return 403
        if case.other_tenant is not None:
            return case.other_tenant
        return 404 if has_path_params else case.ok
    role = "viewer" if caller == "a_viewer" else "admin"
    return case.ok if needed in ROLE_PERMISSIONS[role] else 403


def lacking_scope(permission: Permission) -> str | None:
    return next((s for s, granted in SCOPE_PERMISSIONS.items() if permission not in granted), None)


async def build_world(
    client, make_tenant, make_user, operator_headers, temporal_client, db
) -> World:
    a, b = await make_tenant(), await make_tenant()
    a_admin = await make_user(a, "admin")
    a_viewer = await make_user(a, "viewer")
    a_target = await make_user(a, "member")
    await make_user(a, "owner")
    b_admin = await make_user(b, "admin")

    async def token(tenant, user):
        response = await client.post(
            "/v1/auth/login",
            json={"tenant": tenant.slug, "email": user.email, "password": PASSWORD},
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    headers = {
        "none": {},
        "a_admin": await token(a, a_admin),
        "a_viewer": await token(a, a_viewer),
        "b_admin": await token(b, b_admin),
        "operator": operator_headers,
    }
    key_ids, keys = {}, {}
    for scope in SCOPE_PERMISSIONS:
        created = await client.post(
            "/v1/api-keys",
            json={"name": f"key-{scope}", "scopes": [scope]},
            headers=headers["a_admin"],
        )
        assert created.status_code == 201, created.text
        key_ids[scope], keys[scope] = created.json()["id"], created.json()["key"]
        headers[f"a_key_{scope}"] = bearer(keys[scope])
    put = await client.put("/v1/sso/ldap", json=LDAP_CONFIG, headers=headers["a_admin"])
    assert put.status_code == 200
    put = await client.put("/v1/sso/oidc", json=OIDC_CONFIG, headers=headers["a_admin"])
    assert put.status_code == 200, put.text
    linked = await client.post(
        f"/v1/users/{a_target.id}/identities",
        json={"source": "ldap", "subject": "uid=target,dc=example,dc=org"},
        headers=headers["a_admin"],
    )
    assert linked.status_code == 201, linked.text
    configured = await client.patch(
        "/v1/config", json={"language": "spanish"}, headers=headers["a_admin"]
    )
    assert configured.status_code == 200, configured.text
    marker = uuid.uuid4().hex  # in A's text only; B's answers must never hold it
    document = await client.post(
        "/v1/documents",
        json={"title": "A only", "text": f"{A_SECRET_WORD} {marker}"},
        headers=headers["a_admin"],
    )
    assert document.status_code == 202, document.text
    # Let the platform finish its own work on A first, so the snapshots see only the callers'.
    handle = await started(temporal_client, f"{a.slug}/ingest/{document.json()['id']}")
    assert await handle.result() == "ready"
    waiting = await _incident(client, headers["a_admin"], temporal_client, a, resolve=False)
    resolved = await _incident(client, headers["a_admin"], temporal_client, a, resolve=True)
    endpoint = await client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/a", "events": ["document.ready"]},
        headers=headers["a_admin"],
    )
    assert endpoint.status_code == 201, endpoint.text
    delivery_id = await _failed_delivery(db, a, endpoint.json()["id"])
    identifiers = {
        str(a.id),
        a.slug,
        a_admin.email,
        a_viewer.email,
        a_target.email,
        str(a_target.id),
        str(a_admin.id),
        *key_ids.values(),
        linked.json()["id"],
    }
    identifiers |= {document.json()["id"], marker}
    backup = await take_backup(db, BackupStore.of(get_settings()), slug=a.slug, actor="matrix")
    async with db.control() as session:  # the record of a restore done (no workflow runs on A)
        restore = Restore(
            tenant=a.id,
            slug=a.slug,
            mode="replace",
            archive=backup.archive,
            backup=backup.id,
            status="done",
            stage="done",
            progress={},
            requested_by="matrix",
        )
        session.add(restore)
    return World(
        a,
        b,
        a_target,
        key_ids,
        document.json()["id"],
        waiting,
        resolved,
        endpoint.json()["id"],
        delivery_id,
        linked.json()["id"],
        headers,
        identifiers,
        str(backup.id),
        str(restore.id),
        str(await _finished_move(db, a)),
        await _matrix_cell(db),
    )


async def _finished_move(db, tenant) -> uuid.UUID:
    """A move record of A, as one that already went there and back leaves it."""
    from tenantry.ops.models import TenantMove

    async with db.control() as session:
        move = TenantMove(
            id=uuid.uuid4(),
            tenant=tenant.id,
            slug=tenant.slug,
            source="main",
            target="main",
            status="done",
            stage="done",
            progress={},
            requested_by="matrix",
        )
        session.add(move)
    return move.id


MATRIX_CELL: list[str] = []


async def _matrix_cell(db) -> str:
    """One cell for the whole matrix, created the first time a world needs it."""
    from tenantry.tenants import cells

    if not MATRIX_CELL:
        settings = get_settings()
        name = f"mx-{uuid.uuid4().hex[:8]}"
        location = cells.check(settings, name=name, database=name.replace("-", "_"), url_env=None)
        await asyncio.to_thread(cells.provision, settings, settings.database_url, location)
        async with db.control() as session:
            await cells.register(session, name=name, location=location)
        MATRIX_CELL.append(name)
    return MATRIX_CELL[0]


async def _incident(client, headers, temporal_client, tenant, *, resolve: bool) -> str:
    """An incident of A, left waiting for a person or resolved; its workflow's work all done."""
    created = await client.post(
        "/v1/incidents", json={"title": "World", "description": "Setup"}, headers=headers
    )
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    run = await started(temporal_client, f"{tenant.slug}/incident/{number.removeprefix('INC-')}")
    for _ in range(400):
        if (await run.query("state"))["status"] == "awaiting_approval":
            break
        await asyncio.sleep(0.05)
    if resolve:
        await client.post(
            f"/v1/incidents/{number}/resolve", json={"resolution": "Done."}, headers=headers
        )
        await run.result()
        shown = (await client.get(f"/v1/incidents/{number}", headers=headers)).json()
        learned = await started(
            temporal_client, f"{tenant.slug}/ingest/{shown['knowledge_document_id']}"
        )
        assert await learned.result() == "ready"
    return number


async def _failed_delivery(db, tenant, endpoint_id: str) -> str:
    """A delivery of A's that already failed, as the delivery workflow leaves one."""
    from sqlalchemy import text

    delivery_id = str(uuid.uuid4())
    async with db.tenant(tenant.id) as session:
        await session.execute(
            text(
                "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, payload, "
                "status, attempts, last_error, created_at, updated_at) VALUES (:t, :d, :e, 'evt_m', "
                "'document.ready', '{}', 'failed', 2, 'HTTP 503', now(), now())"
            ),
            {"t": tenant.id, "d": delivery_id, "e": endpoint_id},
        )
    return delivery_id


def snapshot(admin_sql, tenant_id) -> str:
    tables = [
        r[0]
        for r in admin_sql.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY table_name"
        ).fetchall()
    ]
    state = {}
    for table in (t for t in tables if t not in VOLATILE_TABLES):
        rows = admin_sql.execute(
            f"SELECT to_jsonb(t) FROM {table} t WHERE tenant_id = %s", [tenant_id]
        ).fetchall()
        state[table] = sorted(
            json.dumps({k: v for k, v in r[0].items() if k not in VOLATILE_COLUMNS}, sort_keys=True)
            for r in rows
        )
    tenant_row = admin_sql.execute(
        "SELECT to_jsonb(t) FROM tenants t WHERE id = %s", [tenant_id]
    ).fetchone()[0]
    state["tenants"] = [json.dumps(tenant_row, sort_keys=True)]
    return json.dumps(state, sort_keys=True)


async def test_every_route_for_every_caller(
    app,
    make_tenant,
    make_user,
    operator_headers,
    admin_sql,
    temporal_client,
    worker,
    db,
    outbox_late_never,
):
    schema = app.openapi()
    routes = [
        (method.upper(), path, op.get("x-permission"))
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]
    undescribed = sorted(f"{m} {p}" for m, p, _ in routes if (m, p) not in CASES)
    unguarded = sorted(f"{m} {p}" for m, p, perm in routes if perm is None)
    assert not unguarded, f"routes without a declared permission: {unguarded}"
    assert not undescribed, f"describe these routes in CASES: {undescribed}"

    failures: list[str] = []
    address = 0
    shared_world = None
    for method, path, permission in routes:
        case = CASES[(method, path)]
        # Reads may share one world; anything that can write gets a fresh one.
        if method != "GET" or shared_world is None:
            async with _client(app, address := address + 1) as client:
                world = await build_world(
                    client, make_tenant, make_user, operator_headers, temporal_client, db
                )
            if method == "GET":
                shared_world = world
        else:
            world = shared_world
        url = path.format(**case.params(world))
        has_params = "{" in path
        wanted = {c: expected_status(permission, case, c, has_params) for c in CALLERS}
        # Callers that must succeed go last, so that a delete cannot hide what the others get.
        for caller in sorted(
            (c for c in CALLERS if wanted[c] is not None), key=lambda c: wanted[c] < 400
        ):
            want = wanted[caller]
            headers = caller_headers(world, caller, permission)
            before = snapshot(admin_sql, world.a.id)
            async with _client(app, address := address + 1) as client:
                if case.files is not None:
                    response = await client.request(
                        method, url, params=case.query, files=case.files(world), headers=headers
                    )
                else:
                    response = await client.request(
                        method, url, params=case.query, json=case.body(world), headers=headers
                    )
            label = f"{method} {path} as {caller}"
            if response.status_code != want:
                failures.append(
                    f"{label}: {response.status_code} (wanted {want}) {response.text[:200]}"
                )
                continue
            failures += isolation_failures(
                label,
                response.status_code,
                caller=caller,
                permission=permission,
                world=world,
                admin_sql=admin_sql,
                before=before,
                shown=answer_without_echo(response),
            )
    assert not failures, "\n".join(failures)


def isolation_failures(
    label: str,
    status: int,
    *,
    caller: str,
    permission: str,
    world: World,
    admin_sql,
    before: str,
    shown: str,
) -> list[str]:
    """What a call that got its wanted status still did wrong: changed tenant A's rows when it
    must not (refused, or made by tenant B's admin or by nobody; a public route may record its
    own attempt), or showed tenant B's admin any of A's identifiers."""
    failures = []
    must_not_change = status >= 400 or caller in ("b_admin", "none")
    if must_not_change and permission != "public" and snapshot(admin_sql, world.a.id) != before:
        failures.append(f"{label}: changed tenant A's rows")
    if caller == "b_admin":
        leaked = [i for i in world.a_identifiers if i in shown]
        if leaked:
            failures.append(f"{label}: showed tenant A's data {leaked}")
    return failures


def answer_without_echo(response) -> str:
    """The body, less a problem's `instance`: the path the caller itself sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        body.pop("instance", None)
    return json.dumps(body)


def caller_headers(world: World, caller: str, permission: str) -> dict[str, str]:
    if caller != "a_key_without_scope":
        return world.headers[caller]
    if permission == "public" or permission.startswith("operator"):
        return world.headers["a_key_admin"]  # the most powerful key still may not pass
    return world.headers[f"a_key_{lacking_scope(Permission(permission))}"]


def _client(app, n: int) -> AsyncClient:
    # A distinct client address per call keeps login throttling from mixing up the callers.
    transport = ASGITransport(app=app, client=(f"192.0.2.{n % 250 + 1}", 40000 + n))
    return AsyncClient(transport=transport, base_url="http://test")


def test_the_matrix_rules_are_not_vacuous():
    """Spot checks of the derived expectations, so a broken rule cannot pass every route."""
    case = Case(200)
    assert expected_status("users:manage", case, "a_viewer", False) == 403
    assert expected_status("users:read", case, "b_admin", True) == 404
    assert expected_status("operator", case, "a_admin", False) == 403
    assert expected_status("me", case, "operator", False) == 403
    assert expected_status("me", case, "a_key_without_scope", False) is None
    assert expected_status("content:read", case, "a_viewer", False) == 200
