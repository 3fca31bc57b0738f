"""The operator's tenant page beyond its lifecycle: backups, health and SLO, the Temporal UI link
and a deletion's progress; operators' console sessions; OIDC sign-in to the console."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from sqlalchemy import select

from tenantry.console import session as sessions
from tenantry.identity.models import OperatorToken
from tenantry.identity.tokens import digest
from tenantry.ops.models import Backup
from tests.conftest import bearer, login
from tests.console.helpers import console_client, csrf_of, make_operator, sign_in
from tests.identity.oidc_servers import authorize, provider, query, set_person
from tests.workflows import started


@pytest.fixture(scope="module")
def issuer():
    with provider() as url:
        yield url


async def test_backups_are_requested_followed_and_verified_from_the_tenant_page(
    app, db, make_tenant, operator_headers, temporal_client, worker
):
    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 31) as c:
        csrf = await sign_in(c, email=email)
        requested = await c.post(
            f"/console/admin/tenants/{tenant.slug}/backups", data={"csrf_token": csrf}
        )
        assert requested.status_code == 303, requested.text
        # While it is queued or running, the section polls itself; readable without JS too.
        page = await c.get(f"/console/admin/tenants/{tenant.slug}")
        backup_id = re.search(r'id="backup-([0-9a-f-]{36})"', page.text).group(1)
        handle = await started(temporal_client, f"{tenant.slug}/backup/{backup_id}")
        assert await handle.result() == "done"
        fragment = await c.get(
            f"/console/admin/tenants/{tenant.slug}/backups", headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert f"operator:{email}" in fragment.text
        assert 'class="status done"' in fragment.text and "hx-trigger" not in fragment.text
        assert f"/console/admin/tenants/{tenant.slug}/backups/{backup_id}/verify" in fragment.text
        verified = await c.post(
            f"/console/admin/tenants/{tenant.slug}/backups/{backup_id}/verify",
            data={"csrf_token": csrf},
        )
        assert verified.status_code == 200, verified.text
        assert f"Backup {backup_id} verified" in verified.text
        # Verifying one that does not exist: the API's 404, shown in the page.
        missing = await c.post(
            f"/console/admin/tenants/{tenant.slug}/backups/{uuid.uuid4()}/verify",
            data={"csrf_token": csrf},
        )
        assert missing.status_code == 404 and "No backup" in missing.text
    # Requested as the API requests it: the record names the operator.
    async with db.control() as session:
        by = await session.scalar(select(Backup.requested_by).where(Backup.id == backup_id))
    assert by == f"operator:{email}"


async def test_health_shows_the_admin_slo_report_workflows_and_limits_in_use(
    app, client, make_tenant, make_user, operator_headers
):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    await make_user(tenant, "member")
    headers = bearer((await login(client, tenant, admin))["access_token"])
    assert (await client.get("/v1/me", headers=headers)).status_code == 200
    report = (
        await client.get(f"/v1/admin/tenants/{tenant.slug}/slo", headers=operator_headers)
    ).json()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 32) as c:
        await sign_in(c, email=email)
        page = await c.get(f"/console/admin/tenants/{tenant.slug}/health")
    assert page.status_code == 200, page.text
    for window in report["windows"]:
        assert f"<td>{window['window']}</td>" in page.text
    day = next(w for w in report["windows"] if w["requests"])
    assert f"<td>{day['window']}</td><td>{day['requests']:,}</td>" in page.text
    assert re.search(r"<td><code>users</code></td><td>2</td><td>\d+</td>", page.text)
    assert 'id="workflows-in-flight">0<' in page.text and 'id="workflows-queued">0<' in page.text


async def test_the_temporal_ui_link_follows_the_setting_and_is_absent_without_it(
    app, make_tenant, operator_headers, operator_config
):
    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 33) as c:
        await sign_in(c, email=email)
        bare = await c.get(f"/console/admin/tenants/{tenant.slug}")
        assert "Temporal UI" not in bare.text
        plain = app.state.settings
        app.state.settings = plain.model_copy(
            update={"temporal_ui_url": "https://temporal.example/ui/"}
        )
        try:
            linked = await c.get(f"/console/admin/tenants/{tenant.slug}")
            await operator_config(
                tenant, {"features": {"dedicated_workers": True, "own_namespace": True}}
            )
            own = await c.get(f"/console/admin/tenants/{tenant.slug}")
        finally:
            app.state.settings = plain
    want = (
        "https://temporal.example/ui/namespaces/default/workflows?query="
        f"TenantId%3D%22{tenant.slug}%22"
    )
    assert f'href="{want}"' in linked.text
    assert f"<dd>{tenant.cell}</dd>" in linked.text  # the cell the tenant lives on
    # A tenant with a namespace of its own: its workflows are listed there.
    assert f'href="{want.replace("/default/", f"/tenant-{tenant.slug}/")}"' in own.text


async def test_a_deletion_shows_its_progress_until_the_clean_up_is_done(
    app, db, make_tenant, operator_headers
):
    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 34) as c:
        csrf = await sign_in(c, email=email)
        before = await c.get(f"/console/admin/tenants/{tenant.slug}/deletion")
        assert "not requested" in before.text and "hx-trigger" not in before.text
        deleted = await c.post(
            f"/console/admin/tenants/{tenant.slug}/delete",
            data={"csrf_token": csrf, "confirm": tenant.slug},
        )
        assert deleted.status_code == 303
        assert deleted.headers["location"] == f"/console/admin/tenants/{tenant.slug}/deletion"
        page = await c.get(deleted.headers["location"])
        assert page.status_code == 200, page.text
        # Rows purged in the request; the clean-up outside the database is the relay's, polled.
        assert 'id="deletion-status">in progress' in page.text
        assert 'hx-trigger="every 2s"' in page.text
        assert re.search(r"<span class=\"status ok\">done</span> Rows purged", page.text)
        assert f"operator:{email}" in page.text
        from tenantry.tenants.models import TenantDeletion

        async with db.control() as session:  # the relay's clean-up, closed
            row = await session.get(TenantDeletion, tenant.id)
            row.cleaned_at = row.deleted_at
        done = await c.get(deleted.headers["location"], headers={"HX-Request": "true"})
        assert 'id="deletion-status">complete' in done.text and "hx-trigger" not in done.text


async def test_an_operators_session_lasts_as_a_users_and_logout_revokes_it(
    app, db, settings, operator_headers
):
    email = await make_operator(app, operator_headers)
    async with console_client(app, 35) as c:
        csrf = await sign_in(c, email=email)
        cookie = c.cookies.get(sessions.COOKIE)
        session = sessions.decode(cookie, app.state.signing_key)
        # Not the bare access token (gone after access_token_minutes): a session of its own.
        assert session.expires_at - time.time() > settings.access_token_minutes * 60
        assert session.expires_at - time.time() > (sessions.SESSION_HOURS - 1) * 3600
        async with db.control() as s:
            row = await s.scalar(
                select(OperatorToken).where(
                    OperatorToken.token_hash == digest(session.access_token)
                )
            )
        assert row is not None and row.revoked_at is None and row.expires_at is not None
        out = await c.post("/console/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
    async with db.control() as s:
        assert (await s.get(OperatorToken, row.id)).revoked_at is not None
    async with console_client(app, 36) as c:  # the old cookie, replayed: signs nobody in
        c.cookies.set(sessions.COOKIE, cookie, path="/console")
        again = await c.get("/console/admin/tenants")
        assert again.status_code == 303 and again.headers["location"].startswith("/console/login")


async def test_oidc_sign_in_from_the_console_ends_in_a_console_session(
    app, client, make_tenant, make_user, issuer, admin_sql
):
    tenant = await make_tenant()
    owner = await make_user(tenant, "owner")
    headers = bearer((await login(client, tenant, owner))["access_token"])
    put = await client.put(
        "/v1/sso/oidc",
        json={
            "issuer": issuer,
            "client_id": f"tenantry-{tenant.slug}",
            "client_secret": "secret-" + uuid.uuid4().hex,
            "allowed_domains": ["acme.example"],
            "role_claim": "groups",
            "role_map": {"eng-admins": "admin"},
        },
        headers=headers,
    )
    assert put.status_code == 200, put.text
    sub = f"pat-{uuid.uuid4().hex[:6]}"
    await set_person(
        issuer,
        sub,
        email=f"{sub}@acme.example",
        email_verified=True,
        groups=["eng-admins"],
        name="Pat",
    )
    await set_person(
        issuer,
        "outsider",
        email="outsider@elsewhere.example",
        email_verified=True,
        groups=[],
        name="Out",
    )
    async with console_client(app, 37) as c:
        form = await c.get("/console/login", params={"tenant": tenant.slug})
        start = f"/console/oidc/{tenant.slug}/start"
        assert f'href="{start}"' in form.text
        location = (await c.get(start)).headers["location"]
        assert query(location)["redirect_uri"].endswith(f"/console/oidc/{tenant.slug}/callback")
        back = await c.get(await authorize(location, sub))
        assert back.status_code == 303 and back.headers["location"] == "/console"
        users = await c.get("/console/users")  # an admin's page, as the mapped role allows
        assert users.status_code == 200 and f"{sub}@acme.example" in users.text
        csrf_of(users.text)
    row = admin_sql.execute(
        "SELECT i.source, i.subject FROM user_identities i WHERE i.tenant_id = %s", [tenant.id]
    ).fetchall()
    assert row == [("oidc", sub)]
    # A person from a domain the tenant did not allow: the refusal, in the sign-in page.
    async with console_client(app, 38) as c:
        location = (await c.get(f"/console/oidc/{tenant.slug}/start")).headers["location"]
        refused = await c.get(await authorize(location, "outsider"))
        assert refused.status_code == 403, refused.text
        assert "This email domain may not sign in here" in refused.text
        assert 'action="/console/login"' in refused.text
        assert (
            sessions.COOKIE not in c.cookies
            or not sessions.decode(c.cookies.get(sessions.COOKIE), app.state.signing_key).signed_in
        )
    # A tenant without OIDC offers no such link, and its start is the API's 404.
    other = await make_tenant()
    async with console_client(app, 39) as c:
        form = await c.get("/console/login", params={"tenant": other.slug})
        assert "/oidc/" not in form.text
        assert (await c.get(f"/console/oidc/{other.slug}/start")).status_code == 404
