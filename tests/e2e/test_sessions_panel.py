"""The Sessions panel inside the search page, with the demo's seeded sessions, at both widths."""

from __future__ import annotations

from supportlens_sandbox.sessions_demo import ensure_demo_site, seed_sessions
from tests.e2e.conftest import browser_sign_in
from tests.support.agents import PASSWORD, make_agent


async def test_panel_in_search_page(desktop_page, phone_page, sessionmaker, artifacts_dir, worker):
    async with sessionmaker() as db:
        await ensure_demo_site(db, "http://127.0.0.1:8004")
        assert await seed_sessions(db, customers=3) >= 5
    await worker.drained()  # the seeded sessions are mapped
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    for page, label in ((desktop_page, "desktop"), (phone_page, "phone")):
        await browser_sign_in(page, "sam@example.com", PASSWORD)
        await page.goto("/?q=jane@acme.io")
        if label == "phone":
            await page.click("#tab-sessions")
        cards = page.locator(".session-card")
        await cards.first.wait_for()
        shown = await cards.count()
        assert 1 <= shown <= 8
        assert await page.locator(".session-card .signal").count() >= shown
        assert await page.locator(".session-card .mapping").count() == shown
        assert shown == 8  # Jane has 7 seeded sessions and 2 on a phone: eight, then "Show more"
        await page.locator(".sessions-more__button").click()
        await page.locator(".session-card").nth(8).wait_for()
        assert await page.locator(".session-card").count() == 9
        # The phone's visit from a carrier's address is linked through its other visit.
        through_browser = page.locator(".mapping__evidence-item", has_text="other visit of this browser")
        assert await through_browser.count() == 1
        assert await page.locator(".session-card__expired").count() >= 1  # the 34-day-old session
        await page.screenshot(path=str(artifacts_dir / f"sessions-panel-{label}.png"), full_page=True)
        assert page.js_errors == []
