"""The Clarity connection page in Chromium at desktop and phone widths."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import browser_sign_in
from tests.insights.support import running_simulator
from tests.support.agents import PASSWORD, make_agent


@pytest.fixture
def sim():
    with running_simulator(site_origin="https://shop.example") as s:
        yield s


@pytest.fixture
def settings(settings_factory, sim):
    return settings_factory(**sim.settings())


async def test_clarity_connection_page_shows_status(
    desktop_page, phone_page, sessionmaker, sim, artifacts_dir
):
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    page = desktop_page
    await browser_sign_in(page, "ada@example.com", PASSWORD)
    await page.goto("/admin")
    await page.click("text=Clarity connection")
    await page.wait_for_url("**/admin/clarity")
    assert await page.locator("[data-testid=token-status]").inner_text() == "not pulled yet"
    await page.select_option("#pull-schedule", "url_device")
    await page.click("button:has-text('Pull now')")
    await page.wait_for_url("**/admin/clarity?pulled=ok")
    assert await page.locator("[data-testid=token-status]").inner_text() == "ok"
    assert await page.locator("[data-testid=calls-used]").inner_text() == "1/10"
    assert (
        await page.locator(".site-context-item[data-path='/pay'] .badge").inner_text()
        == "Broken for everyone"
    )
    await page.screenshot(path=str(artifacts_dir / "clarity-admin-ok-desktop.png"), full_page=True)

    sim.state.token = "rotated"  # the token stops working at Clarity
    await page.click("button:has-text('Pull now')")
    await page.wait_for_url("**/admin/clarity?pulled=unauthorized")
    assert await page.locator("[data-testid=token-status]").inner_text() == "unauthorized"
    assert "401" in await page.locator("[data-testid=last-error]").inner_text()
    await page.screenshot(path=str(artifacts_dir / "clarity-admin-401-desktop.png"), full_page=True)

    sim.state.token = "sim-clarity-token"
    sim.state.export_calls = {k: 10 for k in sim.state.export_calls}  # the day's quota is gone at Clarity
    phone = phone_page
    await browser_sign_in(phone, "ada@example.com", PASSWORD)
    await phone.goto("/admin/clarity")
    await phone.click("button:has-text('Pull now')")
    await phone.wait_for_url("**/admin/clarity?pulled=quota_exhausted")
    assert await phone.locator("[data-testid=token-status]").inner_text() == "quota exhausted"
    assert await phone.locator("[data-testid=calls-used]").inner_text() == "10/10"
    assert await phone.locator("button:has-text('Pull now')").is_disabled()
    await phone.screenshot(path=str(artifacts_dir / "clarity-admin-429-phone.png"), full_page=True)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page scrolls sideways on a phone ({width}px)"
    assert page.js_errors == [] and phone.js_errors == []
