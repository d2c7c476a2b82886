"""The login page in Chromium at desktop and phone widths."""

from __future__ import annotations

from tests.e2e.conftest import browser_sign_in
from tests.support.agents import PASSWORD, make_agent


async def test_sign_in_and_out_in_the_browser(desktop_page, phone_page, sessionmaker, artifacts_dir):
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    for page, label in ((desktop_page, "desktop"), (phone_page, "phone")):
        await page.goto("/")
        assert "/login" in page.url
        await page.screenshot(path=str(artifacts_dir / f"login-{label}.png"), full_page=True)
        await page.fill("#email", "ada@example.com")
        await page.fill("#password", "wrong password!")
        await page.click("button[type=submit]")
        assert await page.locator(".alert-error").inner_text() == "Wrong e-mail or password."
        await browser_sign_in(page, "ada@example.com", PASSWORD)
        assert await page.locator(".avatar").first.is_visible()
        await page.keyboard.press("/")
        assert await page.evaluate("document.activeElement.id") == "global-search"
        await page.screenshot(path=str(artifacts_dir / f"home-{label}.png"), full_page=True)
        await page.locator(".account-menu summary").click()
        await page.click("text=Sign out")
        await page.wait_for_url("**/login")
        assert page.js_errors == []
