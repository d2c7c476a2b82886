"""The comparison, the spike-alerts admin page and the home page's "Spiking now", in Chromium:
both themes, 1440 and 390 px, axe and no sideways scroll; screenshots for a person to look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.e2e.test_pages import set_theme_with_the_toggle, settle
from tests.investigation.seed import seed_checkout_session
from tests.issues.seed_compare import seed_comparison
from tests.support.agents import PASSWORD, make_agent


async def test_compare_alerts_and_spiking_pages(browser, live_server, sessionmaker, artifacts_dir):
    start = datetime.now(tz=UTC) - timedelta(days=1)
    failing = await seed_checkout_session(sessionmaker, start=start)
    issue_id = await seed_comparison(sessionmaker, failing.id, start)
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    from supportlens.issues.reports import week_of

    pages = {
        "compare": f"/issues/{issue_id}/compare",
        "report": f"/reports/weekly?week={week_of(start)}",
        "alerts": "/admin/alerts",
        "home": "/",
    }
    desktop = await new_page(browser, DESKTOP, live_server.url)
    phone = await new_page(browser, PHONE, live_server.url)
    await browser_sign_in(desktop, "ada@example.com", PASSWORD)
    await browser_sign_in(phone, "ada@example.com", PASSWORD)
    try:
        for theme in ("light", "dark"):
            await set_theme_with_the_toggle(desktop, theme)
            for page, width in ((desktop, "desktop"), (phone, "phone")):
                await page.emulate_media(reduced_motion="reduce", color_scheme=theme)
                for name, url in pages.items():
                    await page.goto(url)
                    await settle(page)
                    if name == "compare":
                        assert await page.locator("[data-testid=divergence-row]").count() == 1
                    if name == "report":
                        assert "TypeError" in await page.locator("[data-testid=top-issues]").inner_text()
                    if name == "home":
                        await page.locator("[data-testid=spiking-now]").wait_for()
                    await page.screenshot(
                        path=str(artifacts_dir / f"alerts-{name}-{theme}-{width}.png"), full_page=True
                    )
                    await assert_fits(page)
                    await assert_accessible(page, f"{name} ({theme}, {width})")
        assert desktop.js_errors == [] and phone.js_errors == []
    finally:
        await desktop.context.close()
        await phone.context.close()
