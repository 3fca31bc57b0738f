"""The console in process: signing in, CSRF, permissions and problems shown in the page."""

from __future__ import annotations

import re

from sqlalchemy import select

from tenantry.audit.models import AuditEvent
from tenantry.console.session import COOKIE
from tests.conftest import PASSWORD
from tests.console.helpers import console_client, csrf_of, make_operator, sign_in


async def test_operator_pages_and_actions_are_the_apis(app, db, make_tenant, operator_headers):
    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 1) as c:
        csrf = await sign_in(c, email=email)
        listed = await c.get("/console/admin/tenants", params={"q": tenant.slug[2:]})
        assert tenant.slug in listed.text
        page = await c.get(f"/console/admin/tenants/{tenant.slug}")
        assert page.status_code == 200, page.text
        assert "<main" in page.text and "Limits" in page.text
        # Every form carries the session's token, forms drawn by macros included.
        tokens = set(re.findall(r'name="csrf_token" value="([^"]*)"', page.text))
        assert tokens == {csrf}
        set_limit = await c.post(
            f"/console/admin/tenants/{tenant.slug}/limits",
            data={"csrf_token": csrf, "name": "users", "value": "7"},
        )
        assert set_limit.status_code == 303, set_limit.text
        suspended = await c.post(
            f"/console/admin/tenants/{tenant.slug}/suspend", data={"csrf_token": csrf}
        )
        assert suspended.status_code == 303
    async with db.control() as session:
        from tenantry.tenants.models import Tenant

        row = await session.get(Tenant, tenant.id)
        assert row.status == "suspended"
        assert row.limit_overrides == {"users": 7}
    async with db.tenant(tenant.id) as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.actor).where(
                    AuditEvent.tenant_id == tenant.id, AuditEvent.action == "tenant.suspended"
                )
            )
        )
    assert actions == [f"operator:{email}"]


async def test_an_unsafe_request_without_the_sessions_csrf_token_changes_nothing(
    app, db, make_tenant, operator_headers
):
    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 2) as c:
        await sign_in(c, email=email)
        for token in ("", "forged-token"):
            refused = await c.post(
                f"/console/admin/tenants/{tenant.slug}/suspend", data={"csrf_token": token}
            )
            assert refused.status_code == 403
            assert "text/html" in refused.headers["content-type"]
            assert "csrf-token-invalid" in refused.text
        other_site = await c.post(
            f"/console/admin/tenants/{tenant.slug}/suspend",
            data={"csrf_token": csrf_of((await c.get("/console/admin/tenants")).text)},
            headers={"Origin": "https://evil.example"},
        )
        assert other_site.status_code == 403
    async with db.control() as session:
        from tenantry.tenants.models import Tenant

        assert (await session.get(Tenant, tenant.id)).status == "active"


async def test_session_cookie_is_httponly_samesite_and_scoped(app, make_tenant, make_user):
    tenant = await make_tenant()
    user = await make_user(tenant, "admin")
    async with console_client(app, 3) as c:
        form = await c.get("/console/login")
        answer = await c.post(
            "/console/login",
            data={
                "csrf_token": csrf_of(form.text),
                "tenant": tenant.slug,
                "email": user.email,
                "password": PASSWORD,
            },
        )
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie")
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP here; HTTPS adds it


async def test_a_wrong_password_shows_the_problem_in_the_page(app, make_tenant, make_user):
    tenant = await make_tenant()
    user = await make_user(tenant, "admin")
    async with console_client(app, 4) as c:
        form = await c.get("/console/login")
        answer = await c.post(
            "/console/login",
            data={
                "csrf_token": csrf_of(form.text),
                "tenant": tenant.slug,
                "email": user.email,
                "password": "not-the-password-at-all",
            },
        )
        assert answer.status_code == 401
        assert 'role="alert"' in answer.text and "Traceback" not in answer.text
        assert COOKIE not in c.cookies or (await c.get("/console/users")).status_code == 303


async def test_a_viewer_sees_but_cannot_act(app, db, make_tenant, make_user):
    tenant = await make_tenant()
    viewer = await make_user(tenant, "viewer")
    async with console_client(app, 5) as c:
        csrf = await sign_in(c, email=viewer.email, tenant=tenant.slug)
        config = await c.get("/console/config")
        assert config.status_code == 200
        assert "<code>language</code>" in config.text
        assert 'action="/console/config"' not in config.text  # no form to change it
        refused = await c.post(
            "/console/config", data={"csrf_token": csrf, "path": "language", "value": "spanish"}
        )
        assert refused.status_code == 403
        assert 'role="alert"' in refused.text and "Traceback" not in refused.text
        assert (await c.get("/console/users")).status_code == 403
    from tenantry.config import service as config_service

    async with db.tenant(tenant.id) as session:
        assert (await config_service.tenant_document(session, tenant.id))[0] == 0


async def test_signing_out_ends_the_session(app, make_tenant, make_user):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    async with console_client(app, 6) as c:
        csrf = await sign_in(c, email=admin.email, tenant=tenant.slug)
        stolen = c.cookies.get(COOKIE)
        out = await c.post("/console/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
    # The old cookie, replayed: its session family is revoked, so it signs nobody in.
    async with console_client(app, 7) as c:
        c.cookies.set(COOKIE, stolen, path="/console")
        again = await c.get("/console/users")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/console/login")


def test_every_template_control_has_a_label():
    """Every input, select and textarea in the templates has an id that a label names."""
    from pathlib import Path

    import tenantry.console

    folder = Path(tenantry.console.__file__).parent / "templates"
    for path in folder.rglob("*.html"):
        html = path.read_text()
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        for control in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in control:
                continue
            ident = re.search(r'id="([^"]+)"', control)
            assert ident, f"{path.name}: a control without an id: {control}"
            assert ident.group(1) in labelled, f"{path.name}: no label for {ident.group(1)}"


async def test_an_operator_changes_a_tenants_config_and_rolls_it_back(
    app, db, make_tenant, operator_headers
):
    from tenantry.config import service as config_service

    tenant = await make_tenant()
    email = await make_operator(app, operator_headers)
    async with console_client(app, 8) as c:
        csrf = await sign_in(c, email=email)
        changed = await c.post(
            f"/console/admin/tenants/{tenant.slug}/config",
            data={"csrf_token": csrf, "path": "language", "value": "spanish"},
        )
        assert changed.status_code == 303, changed.text
        page = await c.get(f"/console/admin/tenants/{tenant.slug}")
        assert re.search(r'<code>language</code></td><td><code>"spanish"</code>', page.text)
        rolled = await c.post(
            f"/console/admin/tenants/{tenant.slug}/config/rollback",
            data={"csrf_token": csrf, "version": "0"},
        )
        assert rolled.status_code == 303, rolled.text
    async with db.tenant(tenant.id) as session:
        effective = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
    assert effective.tenant_version == 2
    assert effective.config["language"] == "english"
    assert effective.sources["language"] == "platform"


async def test_lists_page_by_cursor_and_refuse_a_made_up_one(app, make_tenant, make_user):
    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    made = {admin.email} | {(await make_user(tenant, "member")).email for _ in range(27)}
    async with console_client(app, 9) as c:
        await sign_in(c, email=admin.email, tenant=tenant.slug)
        seen: list[str] = []
        url = "/console/users"
        while url:
            page = await c.get(url)
            assert page.status_code == 200, page.text
            seen += [e for e in re.findall(r"<td>([^<@]+@example\.com)</td>", page.text)]
            following = re.search(r'<a href="(\?cursor=[^"]+)">Next page</a>', page.text)
            url = "/console/users" + following.group(1) if following else None
        assert sorted(seen) == sorted(made)  # every user once, over two pages
        refused = await c.get("/console/users", params={"cursor": "not-a-cursor"})
        assert refused.status_code == 422
        assert "query.cursor" in refused.text
