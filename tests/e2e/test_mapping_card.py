"""Link and Unlink on the session card, in a real browser: htmx request with the page's CSRF token."""

from __future__ import annotations

from tests.e2e.conftest import browser_sign_in
from tests.mapping.helpers import Batch, send
from tests.support.agents import PASSWORD, make_agent

JANE = "jane@acme.io"


async def test_unlink_then_link_from_the_card(desktop_page, phone_page, sessionmaker, artifacts_dir):
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login", 0, 10, ip="10.0.0.1", email=JANE))
        await send(db, Batch("dev1", "anon", 3 * 24 * 60, 10, ip="81.2.3.4"))
        await send(db, Batch("phone", "near", 3 * 24 * 60 + 14, 5, ip="81.2.3.4"))
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    for page, label in ((desktop_page, "desktop"), (phone_page, "phone")):
        await browser_sign_in(page, "sam@example.com", PASSWORD)
        await page.goto(f"/?q={JANE}")
        if label == "phone":
            await page.click("#tab-sessions")
        await page.locator(".session-row").first.wait_for()
        for details in await page.locator(".session-row__more > summary").all():  # the rows' "Details"
            await details.click()
        await page.locator(".mapping").first.wait_for()
        await page.screenshot(path=str(artifacts_dir / f"mapping-card-{label}.png"), full_page=True)
        assert page.js_errors == []
    page = desktop_page
    cards = page.locator(".mapping")
    assert await cards.count() == 2  # the signed-in session and the same-browser one
    device_card = page.locator(".mapping", has_text="same browser as the signed-in session")
    assert await device_card.count() >= 1
    first = device_card.first
    await first.locator("input[name=reason]").fill("John used Jane's laptop")
    await first.get_by_role("button", name="Unlink").click()
    await page.locator(".mapping", has_text="Not linked to a customer").first.wait_for()
    unlinked = page.locator(".mapping", has_text="Not linked to a customer").first
    assert await unlinked.locator("input[name=customer_email]").input_value() == JANE
    await unlinked.get_by_role("button", name="Link").click()
    await page.locator(".mapping", has_text="Linked by an agent").first.wait_for()
    await page.screenshot(path=str(artifacts_dir / "mapping-card-after-link.png"), full_page=True)
    assert page.js_errors == []
