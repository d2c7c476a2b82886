"""The search page in Chromium at 1440x900 and 390x844, against the HubSpot and Dwolla simulators."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supportlens.config import Settings
from tests.e2e.conftest import browser_sign_in
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)
from tests.support.agents import PASSWORD, make_agent


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], sims: Sims) -> Settings:  # noqa: F811
    """The app under test talks to the simulators (the e2e `live_server` fixture uses these settings)."""
    return settings_factory(**sims.settings(), search_source_deadline_seconds=3)


async def _sign_in(page, sessionmaker, email: str) -> None:
    await make_agent(sessionmaker, "agent", email=email)
    await browser_sign_in(page, email, PASSWORD)


async def _search_from_the_box(page, text: str) -> None:
    await page.keyboard.press("/")  # focuses the search box
    assert await page.evaluate("document.activeElement.id") == "global-search"
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")
    await page.wait_for_url(lambda url: "q=" in url)


async def _wait_panels(page) -> None:
    for name in ("hubspot", "dwolla", "sessions"):
        await page.locator(f"#panel-{name}[aria-busy=false]").wait_for(state="attached")


async def test_desktop_search_by_email_name_and_phone(desktop_page, sessionmaker, artifacts_dir) -> None:
    page = desktop_page
    await _sign_in(page, sessionmaker, "desk@example.com")

    await _search_from_the_box(page, "jane@acme.io")
    await _wait_panels(page)
    hubspot, dwolla, sessions = (page.locator(f"#panel-{n}") for n in ("hubspot", "dwolla", "sessions"))
    assert "Jane Doe" in await hubspot.locator("[data-testid=hubspot-contact]").first.inner_text()
    assert "Acme Inc" in await hubspot.inner_text()
    first_transfer = await dwolla.locator("[data-testid=transfers] tbody tr").first.inner_text()
    assert "R01" in first_transfer and "225.00" in first_transfer
    banner = await page.locator("[data-testid=correlation]").first.inner_text()
    assert "matched by" in banner and "Dwolla id" in banner
    session_text = await sessions.inner_text()
    assert "Session capture is not set up yet" in session_text or session_text.strip()
    boxes = [await p.bounding_box() for p in (hubspot, dwolla, sessions)]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # side by side
    assert abs(boxes[0]["y"] - boxes[2]["y"]) < 2
    assert not await page.locator(".search-tabs").is_visible()
    await page.screenshot(path=str(artifacts_dir / "search-email-desktop.png"), full_page=True)

    await _search_from_the_box(page, "chen")
    await _wait_panels(page)
    assert "Robert Chen" in await hubspot.inner_text()
    assert "Bob Chen" in await dwolla.inner_text()
    banner = await page.locator("[data-testid=correlation]").first.inner_text()
    assert "Name differs" in banner
    await page.screenshot(path=str(artifacts_dir / "search-name-desktop.png"), full_page=True)

    await _search_from_the_box(page, "(415) 555-0101")
    await _wait_panels(page)
    assert "Jane Doe" in await hubspot.inner_text()
    assert "Jane Doe" in await dwolla.inner_text()  # followed through HubSpot's Dwolla id
    await page.screenshot(path=str(artifacts_dir / "search-phone-desktop.png"), full_page=True)

    # History: the three searches, newest first; re-run from the list.
    await page.goto("/")
    items = page.locator("[data-testid=history-list] li")
    assert await items.count() == 3
    assert "(415) 555-0101" in await items.first.inner_text()
    await page.screenshot(path=str(artifacts_dir / "search-home-history-desktop.png"), full_page=True)
    await items.nth(2).locator("a").click()
    await page.wait_for_url(lambda url: "q=jane%40acme.io" in url)
    await _wait_panels(page)
    assert page.js_errors == []


async def test_phone_tabs(phone_page, sessionmaker, artifacts_dir) -> None:
    page = phone_page
    await _sign_in(page, sessionmaker, "phone@example.com")
    await page.goto("/?q=maria%40globex.com")
    await _wait_panels(page)
    assert await page.locator(".search-tabs").is_visible()
    hubspot, dwolla = page.locator("#panel-hubspot"), page.locator("#panel-dwolla")
    assert await hubspot.is_visible() and not await dwolla.is_visible()
    assert "E-mail differs" in await page.locator("[data-testid=correlation]").first.inner_text()
    await page.screenshot(path=str(artifacts_dir / "search-email-phone-hubspot.png"), full_page=True)
    await page.click("#tab-dwolla")
    assert await dwolla.is_visible() and not await hubspot.is_visible()
    assert "maria.garcia@globex.com" in await dwolla.inner_text()
    await page.screenshot(path=str(artifacts_dir / "search-email-phone-dwolla.png"), full_page=True)
    await page.click("#tab-sessions")
    assert await page.locator("#panel-sessions").is_visible()
    await page.screenshot(path=str(artifacts_dir / "search-email-phone-sessions.png"), full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways

    # Without session capture (its fragment answers 404) the panel says so instead of failing.
    await page.route("**/partials/sessions?**", lambda route: route.fulfill(status=404, body="not found"))
    await page.goto("/?q=jane%40acme.io")
    await _wait_panels(page)
    await page.click("#tab-sessions")
    assert "Session capture is not set up yet" in await page.locator("#panel-sessions").inner_text()
    await page.screenshot(path=str(artifacts_dir / "search-sessions-missing-phone.png"), full_page=True)
    assert page.js_errors == []


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_dwolla_failing_shows_error_with_retry(
    viewport,
    desktop_page,
    phone_page,
    sessionmaker,
    artifacts_dir,
    sims: Sims,  # noqa: F811
) -> None:
    page = desktop_page if viewport == "desktop" else phone_page
    await _sign_in(page, sessionmaker, f"retry-{viewport}@example.com")
    sims.dwolla.knobs(error_rate=1.0, error_status=503)
    await page.goto("/?q=jane%40acme.io")
    await _wait_panels(page)
    assert "Jane Doe" in await page.locator("#panel-hubspot").inner_text()
    if viewport == "phone":
        await page.click("#tab-dwolla")
        assert "!" in await page.locator("#tab-dwolla").inner_text()  # the tab shows the failure
    error = page.locator("#panel-dwolla .panel-error")
    assert await error.is_visible()
    assert "Dwolla is not answering (" in await error.inner_text()
    await page.screenshot(path=str(artifacts_dir / f"search-dwolla-down-{viewport}.png"), full_page=True)
    sims.dwolla.knobs(error_rate=0.0)
    card = page.locator("#panel-dwolla [data-testid=dwolla-customer]")
    # The failures may have opened the Dwolla circuit breaker: the agent's Retry goes through it at once.
    await page.locator("#panel-dwolla .panel-error button[data-retry]").click()
    await card.wait_for(timeout=3000)
    assert "R01" in await page.locator("#panel-dwolla").inner_text()
    await page.locator("#correlation [data-method=dwolla_id]").wait_for()  # compared again after the retry
    await page.screenshot(path=str(artifacts_dir / f"search-dwolla-retried-{viewport}.png"), full_page=True)
    assert page.js_errors == []
