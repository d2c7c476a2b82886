"""Browser fixtures: Debian's Chromium driven by Playwright, and the app on a real port."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from supportlens.app import create_app
from tests.support.live import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PERSON_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # The tests play a person: no navigator.webdriver and no "HeadlessChrome" in any request, beacons
    # sent as a page unloads included (automated traffic is never a customer's).
    "--disable-blink-features=AutomationControlled",
    f"--user-agent={PERSON_USER_AGENT}",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    # The async API shares the test loop; the sync API would hold a loop on the main thread.
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make setup` (apt-get install chromium)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
def live_server(settings: Any, engine: Any) -> Iterator[LiveServer]:
    # As `supportlens serve` runs: with its in-process task worker (the mapping of captured sessions),
    # but not the periodic schedule, whose runs would change pages under a test at certain hours.
    app_settings = settings.model_copy(update={"run_worker": True, "run_schedule": False})
    with LiveServer(create_app(app_settings)) as server:
        yield server


async def new_page(browser: Any, viewport: dict[str, int], base_url: str) -> Any:
    context = await browser.new_context(viewport=viewport, base_url=base_url, user_agent=PERSON_USER_AGENT)
    context.set_default_timeout(15000)
    page = await context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))  # type: ignore[attr-defined]
    return page


@pytest.fixture
async def desktop_page(browser: Any, live_server: LiveServer) -> AsyncIterator[Any]:
    page = await new_page(browser, DESKTOP, live_server.url)
    yield page
    await page.context.close()


@pytest.fixture
async def phone_page(browser: Any, live_server: LiveServer) -> AsyncIterator[Any]:
    page = await new_page(browser, PHONE, live_server.url)
    yield page
    await page.context.close()


async def browser_sign_in(page: Any, email: str, password: str) -> None:
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
