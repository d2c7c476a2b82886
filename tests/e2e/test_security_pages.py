"""The security admin pages in Chromium at desktop and phone widths: agents (role change), audit log,
erasure confirmation flow; no JS errors and no CSP violations."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

from supportlens.db.base import utcnow
from supportlens.sessions.models import UserSession
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_hostile import watch_csp
from tests.support.agents import PASSWORD, make_agent


async def test_admin_security_pages(browser, live_server, sessionmaker, artifacts_dir):
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    await make_agent(sessionmaker, "viewer", email="vic@example.com")
    async with sessionmaker() as db:
        for i in range(2):
            db.add(
                UserSession(
                    clarity_project_id="p1",
                    clarity_user_id="dev-1",
                    clarity_session_id=f"s{i}{uuid.uuid4().hex[:4]}",
                    customer_email="jane@acme.io",
                    session_start=utcnow() - timedelta(hours=1),
                    session_end=utcnow(),
                )
            )
        await db.commit()
    for viewport, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await new_page(browser, viewport, live_server.url)
        violations = watch_csp(page)
        await browser_sign_in(page, "ada@example.com", PASSWORD)
        await page.goto("/admin")
        assert await page.locator("a[href='/admin/audit']").count() == 1
        await page.goto("/admin/agents")
        if label == "desktop":
            row = page.locator("tr[data-agent='vic@example.com']")
            await row.locator("select").select_option("agent")
            await row.locator("button:has-text('Change role')").click()
            await page.wait_for_selector(".alert-info")
            assert "vic@example.com is now agent." in await page.locator(".alert-info").inner_text()
        await page.screenshot(path=str(artifacts_dir / f"admin-agents-{label}.png"), full_page=True)
        await page.goto("/admin/audit?action=role_change")
        if label == "desktop":
            assert "role_change" in await page.locator("table.sec-audit tbody").inner_text()
        await page.screenshot(path=str(artifacts_dir / f"admin-audit-{label}.png"), full_page=True)
        await page.goto("/admin/erasure")
        await page.fill("#erase-email", "jane@acme.io")
        await page.click("button:has-text('Continue')")
        await page.wait_for_selector("#erase-preview")
        preview = await page.locator("#erase-preview").inner_text()
        assert ("2 session(s)" if label == "desktop" else "0 session(s)") in preview
        await page.screenshot(path=str(artifacts_dir / f"admin-erasure-confirm-{label}.png"), full_page=True)
        await page.fill("#confirm-email", "jane@acme.io")
        await page.click("button:has-text('Erase this customer')")
        await page.wait_for_selector("#erasure-receipt")
        if label == "desktop":  # the receipt, with her Clarity ids, downloads from the page (kept nowhere)
            async with page.expect_download() as started:
                await page.click("#receipt-download")
            saved = Path(await (await started.value).path()).read_text()
            assert json.loads(saved)["manualSteps"][0]["ids"] == ["p1/dev-1"]
        await page.screenshot(path=str(artifacts_dir / f"admin-erasure-receipt-{label}.png"), full_page=True)
        await page.goto("/account/security")
        await page.screenshot(path=str(artifacts_dir / f"account-security-{label}.png"), full_page=True)
        assert page.js_errors == [] and violations == []
        await page.context.close()


async def test_admin_erases_an_internationalised_email_in_the_browser(browser, live_server, sessionmaker):
    """The form takes every address ingest accepts (a browser's type=email refuses `jörg@müller.de`)."""
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    async with sessionmaker() as db:
        db.add(
            UserSession(
                clarity_project_id="p1",
                clarity_user_id="dev-j",
                clarity_session_id="s-jorg",
                customer_email="j\u00f6rg@m\u00fcller.de",
                session_start=utcnow() - timedelta(hours=1),
                session_end=utcnow(),
            )
        )
        await db.commit()
    page = await new_page(browser, DESKTOP, live_server.url)
    await browser_sign_in(page, "ada@example.com", PASSWORD)
    await page.goto("/admin/erasure")
    await page.fill("#erase-email", "jo\u0308rg@mu\u0308ller.de")
    await page.click("button:has-text('Continue')")
    await page.wait_for_selector("#erase-preview")
    assert "1 session(s)" in await page.locator("#erase-preview").inner_text()
    await page.fill("#confirm-email", "J\u00d6RG@M\u00dcLLER.DE")
    await page.click("button:has-text('Erase this customer')")
    await page.wait_for_selector("#erasure-receipt")
    assert await page.locator("dd[data-count='sessions']").inner_text() == "1"
    await page.context.close()
