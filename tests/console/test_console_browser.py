"""The console in a real browser (Debian's Chromium, headless) against a real API process.

An operator creates the first operator account with the bootstrap token, signs in, creates a
tenant, adds its admin, sets a limit, changes a configuration value and rolls it back, suspends
and resumes the tenant, backs it up and verifies the backup, looks at its health, and deletes
another tenant and follows the deletion to its end. The tenant's admin adds a user and an API key, uploads a
document and finds it, and approves an incident's proposal. The admin of another tenant sees
none of it. Every page visited passes axe-core's checks of labels, titles, landmarks and names;
the main pages are saved as screenshots under test-artifacts/console/.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from tests.browser import artifact, chromium
from tests.conftest import PASSWORD
from tests.servers import start_api

pytestmark = pytest.mark.slow

# axe-core rules for what the issue asks: labels, titles, a main landmark, names, language.
AXE_RULES = [
    "label",
    "select-name",
    "button-name",
    "link-name",
    "document-title",
    "html-has-lang",
    "landmark-one-main",
    "duplicate-id-aria",
    "aria-valid-attr",
    "image-alt",
    "svg-img-alt",
]
SECRET = f"remolacha{uuid.uuid4().hex[:6]}"
WAIT_MS = 60_000  # htmx polls every 2 s; ingestion and the incident's workflow take a few


async def accessible(page) -> None:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page, options={"runOnly": {"type": "rule", "values": AXE_RULES}})
    assert results.violations_count == 0, (page.url, results.generate_report())


async def visit(page, url: str, shot: str | None = None):
    answer = await page.goto(url)
    assert answer.status == 200, (url, answer.status, (await page.content())[:500])
    await accessible(page)
    if shot:
        await page.screenshot(path=artifact("console", f"{shot}.png"), full_page=True)
    return answer


async def submit(page, button: str) -> None:
    await page.get_by_role("button", name=button, exact=True).click()
    await page.wait_for_load_state("load")


async def sign_in(page, base: str, *, email: str, tenant: str = "") -> None:
    await visit(page, f"{base}/console/login")
    await page.get_by_label("Organisation", exact=True).fill(tenant)
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/console/(admin/tenants|overview)"))


@pytest.fixture
def api(stack):
    proc, url = start_api(dict(os.environ))
    yield url
    proc.terminate()
    proc.wait(timeout=60)


async def test_operator_and_tenant_admins_in_the_browser(api, worker, operator_headers):
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    slug, other = f"br-{uuid.uuid4().hex[:8]}", f"bo-{uuid.uuid4().hex[:8]}"
    ops_email = f"ops-{uuid.uuid4().hex[:6]}@tenantry.dev"
    admin_a, admin_b = f"admin@{slug}.example", f"admin@{other}.example"
    async with chromium() as browser:
        try:
            # The session's first operator spent the bootstrap token; the setup page takes any
            # operator's token too, as it says.
            token = operator_headers["Authorization"].removeprefix("Bearer ")
            await _scenario(browser, api, token, slug, other, ops_email, admin_a, admin_b)
        except BaseException:
            for n, context in enumerate(browser.contexts):
                for m, page in enumerate(context.pages):
                    await page.screenshot(path=artifact("console", f"failure-{n}-{m}.png"))
            raise


async def _scenario(browser, api, token, slug, other, ops_email, admin_a, admin_b):
    from playwright.async_api import expect

    # The operator ------------------------------------------------------------------
    ops = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await visit(ops, f"{api}/console/setup")
    await ops.get_by_label("Bootstrap token").fill(token)
    await ops.get_by_label("Email").fill(ops_email)
    await ops.get_by_label("Name").fill("Browser ops")
    await ops.get_by_label("Password").fill(PASSWORD)
    await submit(ops, "Create operator")
    await expect(ops.locator(".flash")).to_contain_text(f"Operator {ops_email} created")
    await sign_in(ops, api, email=ops_email)

    for handle, admin in ((slug, admin_a), (other, admin_b)):
        await visit(ops, f"{api}/console/admin/tenants")
        await ops.get_by_label("Handle").fill(handle)
        await ops.get_by_label("Name", exact=True).fill(f"Tenant {handle}")
        await ops.get_by_label("Tier", exact=True).last.select_option("standard")
        await submit(ops, "Create tenant")
        await expect(ops).to_have_url(f"{api}/console/admin/tenants/{handle}")
        await ops.locator("#first-email").fill(admin)
        await ops.locator("#first-password").fill(PASSWORD)
        await submit(ops, "Add user")
        await expect(ops.locator(".flash")).to_contain_text(f"User {admin} (admin) added")

    tenant_page = f"{api}/console/admin/tenants/{slug}"
    await visit(ops, tenant_page)
    await ops.get_by_label("Limit", exact=True).select_option("users")
    await ops.get_by_label("Override").fill("12")
    await submit(ops, "Set limit")
    users_row = ops.locator("#limits tr", has=ops.locator("code", has_text=re.compile("^users$")))
    await expect(users_row.locator("td").nth(2)).to_have_text("12")

    await ops.get_by_label("Setting").fill("language")
    await ops.get_by_label("Value").fill("spanish")
    await submit(ops, "Change")
    language = ops.locator("#config table").first.locator(
        "tr", has=ops.locator("code", has_text=re.compile("^language$"))
    )
    await expect(language).to_contain_text('"spanish"')
    await expect(language).to_contain_text("tenant")
    await ops.get_by_role("button", name="Roll back to version 0").click()
    await expect(ops.locator(".flash")).to_contain_text("Rolled back to version 0")
    await expect(language).to_contain_text('"english"')
    await expect(language).to_contain_text("platform")

    # A refused action shows the API's problem in the page (htmx), and changes nothing.
    await ops.get_by_text("Delete this tenant").click()
    await ops.get_by_label("Type").fill("not-the-handle")
    await ops.get_by_role("button", name=f"Delete {slug}").click()
    await expect(ops.locator("#problem [role=alert]")).to_contain_text(
        f"Type the tenant's handle, {slug}"
    )
    await expect(ops.locator("#problem")).to_contain_text("form.confirm")
    await expect(ops.locator("#tenant-status")).to_have_text("active")

    await submit(ops, "Suspend")
    await expect(ops.locator("#tenant-status")).to_have_text("suspended")
    await submit(ops, "Resume")
    await expect(ops.locator("#tenant-status")).to_have_text("active")
    await ops.get_by_role("link", name="Verify the chain").click()
    await expect(ops.locator("#chain")).to_contain_text("is intact")

    # A backup: requested, followed while htmx polls its section, then verified in the page.
    await submit(ops, "Back up now")
    await expect(ops.locator(".flash")).to_contain_text("requested")
    await expect(ops.locator("#backups .status").first).to_have_text("done")
    await ops.get_by_role("button", name=re.compile("^Verify the backup of")).first.click()
    await expect(ops.locator("#backup-report")).to_contain_text("verified")
    await accessible(ops)
    await ops.locator("#backups").screenshot(path=artifact("console", "operator-backups.png"))
    await visit(ops, f"{tenant_page}/health", shot="operator-health")
    await expect(ops.locator("#health table").first).to_contain_text("1h")
    await visit(ops, tenant_page, shot="operator-tenant")
    await ops.screenshot(path=artifact("console", "readme-operator-tenant.png"))  # the first screen
    await visit(ops, f"{api}/console/admin/tenants", shot="operator-tenants")

    # A tenant deleted with its typed confirmation: its deletion's progress, polled to the end.
    doomed = f"bd-{uuid.uuid4().hex[:8]}"
    await ops.get_by_label("Handle").fill(doomed)
    await ops.get_by_label("Name", exact=True).fill(f"Tenant {doomed}")
    await submit(ops, "Create tenant")
    await ops.get_by_text("Delete this tenant").click()
    await ops.get_by_label("Type").fill(doomed)
    await ops.get_by_role("button", name=f"Delete {doomed}").click()
    await expect(ops).to_have_url(f"{api}/console/admin/tenants/{doomed}/deletion")
    await expect(ops.locator("#deletion-status")).to_have_text("complete")
    await visit(ops, ops.url, shot="operator-deletion")

    # Tenant A's admin -----------------------------------------------------------
    a = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
    await sign_in(a, api, email=admin_a, tenant=slug)
    await visit(a, f"{api}/console/overview", shot="tenant-home")
    await a.screenshot(path=artifact("console", "readme-tenant-home.png"))

    await visit(a, f"{api}/console/users")
    colleague = f"colleague@{slug}.example"
    await a.get_by_label("Email", exact=True).fill(colleague)
    await a.get_by_label("Initial password").fill(PASSWORD)
    await submit(a, "Add user")
    await expect(a.locator("table")).to_contain_text(colleague)

    await visit(a, f"{api}/console/api-keys")
    await a.get_by_label("Name", exact=True).fill("ci")
    await submit(a, "Create key")
    secret = await a.get_by_label("New API key").input_value()
    assert secret.startswith("tnry_"), secret
    await visit(a, f"{api}/console/api-keys")
    assert secret not in await a.content()  # shown once, never again

    note = artifact("console", "runbook.txt")
    note.write_text(f"The {SECRET} valve is reset with the blue lever.\n")
    await visit(a, f"{api}/console/documents")
    await a.get_by_label("File (.txt, .md, .html or .pdf)").set_input_files(note)
    await a.get_by_label("Title").fill("Valve runbook")
    await submit(a, "Upload")
    row = a.locator("tr", has_text="Valve runbook")
    await expect(row.locator(".status")).to_have_text("ready")  # htmx polled it there
    await visit(a, f"{api}/console/documents", shot="tenant-documents")
    await a.get_by_label("Search the documents").fill(SECRET)
    await submit(a, "Search")
    await expect(a.locator(".hits")).to_contain_text("Valve runbook")

    await visit(a, f"{api}/console/incidents")
    await a.get_by_label("Title").fill("The valve is stuck")
    await a.get_by_label("Description").fill(f"The {SECRET} valve will not reset.")
    await submit(a, "Report")
    await expect(a.locator("#incident-status")).to_have_text("awaiting_approval")
    number = a.url.rsplit("/", 1)[-1]
    await accessible(a)
    await a.screenshot(path=artifact("console", "tenant-incident.png"), full_page=True)
    await submit(a, "Approve the proposal")
    await expect(a.locator("#incident-status")).to_have_text("resolved")

    # Tenant B's admin sees none of it -------------------------------------------
    b = await (await browser.new_context()).new_page()
    await sign_in(b, api, email=admin_b, tenant=other)
    for page in ("documents", "incidents", "users", "api-keys", "config", "overview"):
        await visit(b, f"{api}/console/{page}")
        html = await b.content()
        for foreign in (slug, "Valve runbook", colleague, admin_a, number, SECRET):
            assert foreign not in html, (page, foreign)
    await visit(b, f"{api}/console/search?q={SECRET}")
    await expect(b.locator(".hits")).to_contain_text("Nothing found")
    missing = await b.goto(f"{api}/console/incidents/{number}")
    assert missing.status == 404
    await expect(b.locator('[role="alert"]')).to_contain_text("404")
    assert "Traceback" not in await b.content()
    # The keyboard reaches the skip link first.
    await b.keyboard.press("Tab")
    assert await b.evaluate("document.activeElement.className") == "skip"
