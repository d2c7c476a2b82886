"""Investigating a session in Chromium: play, jump to the error, annotate, journey, exports, axe-core."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from supportlens.app import create_app
from supportlens.web.pages import STATIC_DIR
from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.world import demo_world
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.investigation.seed import seed_checkout_session
from tests.support.agents import PASSWORD, make_agent
from tests.support.live import LiveServer

AXE = STATIC_DIR / "vendor" / "axe.min.js"


@pytest.fixture
def investigation_server(settings_factory: Any, engine: Any) -> Iterator[LiveServer]:
    """The app on a real port with the Dwolla simulator (demo world) behind it."""
    with LiveServer(create_dwolla_app(demo_world())) as sim:
        settings = settings_factory(
            dwolla_base_url=sim.url, dwolla_key=DWOLLA_KEY, dwolla_secret=DWOLLA_SECRET
        )
        with LiveServer(create_app(settings)) as server:
            yield server


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core from the npm registry, injected into the page; serious and critical violations only."""
    # By URL: the app serves static/vendor/axe.min.js itself, so the page's CSP (script-src 'self') allows it.
    assert AXE.is_file()
    await page.add_script_tag(url="/static/vendor/axe.min.js")
    found = await page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


async def assert_accessible(page: Any, what: str = "") -> None:
    found = await axe_violations(page)
    assert found == [], f"{what or page.url}: " + json.dumps(found, indent=1)


async def assert_fits(page: Any) -> None:
    """Nothing wider than the viewport (no sideways scrolling on a phone)."""
    width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url}: page is {width[0]} px wide in a {width[1]} px viewport"


async def wait_until(page: Any, js: str, timeout: float = 10) -> None:
    """Poll a predicate (wait_for_function would need eval, which the page's CSP forbids)."""
    import asyncio

    for _ in range(int(timeout / 0.05)):
        if await page.evaluate(js):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {js}")


async def scrub_value(page: Any) -> int:
    return int(await page.locator("[data-role=scrubber]").input_value())


async def investigate(page: Any, label: str, session_id: str, artifacts: Path, downloads: Path) -> None:
    await page.goto(f"/sessions/{session_id}")
    await page.wait_for_selector("[data-player][data-ready=true]")
    assert await page.locator("[data-recording=open]").get_attribute("href") == (
        "https://clarity.microsoft.com/player/proj1/user1/s1abc"
    )
    await page.screenshot(path=str(artifacts / f"inv-session-{label}.png"), full_page=True)
    await assert_fits(page)
    await assert_accessible(page)

    # play at 4x for a moment, then pause with the space bar
    await page.click("[data-speed='4']")
    await page.click("[data-action=play]")
    await wait_until(page, "() => Number(document.querySelector('[data-role=scrubber]').value) > 2000")
    await page.locator("body").focus()
    await page.keyboard.press(" ")
    assert await page.get_attribute("[data-action=play]", "aria-label") == "Play"
    paused_at = await scrub_value(page)
    assert paused_at > 2000
    assert await page.locator("[data-role=title]").inner_text() in ("Shop home", "Products", "/", "/products")

    # step with the arrow keys, then jump to the error with "e"
    await page.keyboard.press("ArrowRight")
    assert await scrub_value(page) > paused_at
    await page.keyboard.press("e")
    await wait_until(page, "() => document.querySelector('[data-role=scrubber]').value === '300500'")
    current = page.locator("[data-role=current]")
    assert "JavaScript error: TypeError: Cannot read properties of undefined" in await current.inner_text()
    assert "ev-error" in (await current.get_attribute("class") or "")
    assert await page.locator("[data-role=url]").inner_text() == "https://shop.example/pay"
    step = page.locator(".story-step.current")  # the story marks the error the player is at
    assert "TypeError: Cannot read properties" in await step.inner_text()
    assert "kind-error" in (await step.get_attribute("class") or "")
    assert await page.locator(".story-step.kind-rage").count() == 1  # the dead and rage clicks on /pay
    assert await page.locator(".mk-error").count() == 1
    assert await page.locator(".player-events li").count() <= 40
    assert "t=300500" in page.url
    await page.screenshot(path=str(artifacts / f"inv-session-error-{label}.png"), full_page=True)

    # a note at that moment, shown on the timeline
    text = f"Pay threw for the customer ({label})"
    await page.fill("textarea[name=note]", text)
    await page.select_option("select[name=category]", "issue")
    await page.select_option("select[name=severity]", "high")
    assert await page.locator("[data-role=note-at]").inner_text() == "5:00"
    await page.click("[data-role=note-form] button[type=submit]")
    item = page.locator(".note-item", has_text=text)
    await item.wait_for()
    assert "5:00" in await item.inner_text()
    pin = page.locator(f".mk-note[title*='{label}']")
    assert await pin.count() == 1
    left = await pin.evaluate("el => parseFloat(el.style.left)")
    assert abs(left - 100 * 300500 / 360000) < 0.1

    # both exports, as the browser downloads them
    async with page.expect_download() as info:
        await page.click("[data-export=json]")
    got = json.loads(Path(await (await info.value).path()).read_text())
    assert got["session"]["id"] == session_id and len(got["events"]) == 14
    assert any(e["type"] == "error" and e["message"].startswith("TypeError") for e in got["events"])
    async with page.expect_download() as info:
        await page.click("[data-export=csv]")
    rows = list(csv.DictReader(io.StringIO(Path(await (await info.value).path()).read_text())))
    assert (
        len(rows) == 14 and rows[0]["type"] == "navigation" and rows[0]["page_url"] == "https://shop.example/"
    )

    # the journey: the failed transfer beside the session error
    await page.click("a:text-is('Journey')")
    await page.wait_for_url("**/journey")
    kinds = await page.eval_on_selector_all(".j-item", "els => els.map(e => e.dataset.kind)")
    i = kinds.index("transfer_failed")
    assert kinds[i + 1] == "error", kinds  # newest first: the error a minute before comes next
    failed = page.locator(".j-item[data-kind=transfer_failed]")
    assert "Transfer of $225.00 failed" in await failed.inner_text()
    assert "R01" in await failed.inner_text()
    assert "JavaScript error on /pay at" in await failed.locator("[data-badge]").inner_text()
    err = page.locator(".j-item[data-kind=error]")
    assert "Transfer of $225.00 failed at" in await err.locator("[data-badge]").inner_text()
    assert await page.locator("[data-source-note=hubspot]").count() == 1  # not configured: said so
    await page.screenshot(path=str(artifacts / f"inv-journey-{label}.png"), full_page=True)
    await assert_fits(page)
    await assert_accessible(page)

    # customer analytics: charts drawn (no animation, so the screenshot shows them whole), tables beside them
    await page.emulate_media(reduced_motion="reduce")
    await page.click("a:text-is('Analytics')")
    await page.wait_for_selector("[data-charts][data-ready=true]")
    await page.wait_for_selector("[data-heatmap][data-points]")
    await page.screenshot(path=str(artifacts / f"inv-analytics-{label}.png"), full_page=True)
    await assert_fits(page)
    await assert_accessible(page)

    # a session from the list: a dialog over the page on desktop, the full page on a phone
    await page.click(f"a[href='/sessions/{session_id}']")
    if label == "desktop":
        await page.wait_for_selector("dialog.session-dialog[data-ready=true] [data-player][data-ready=true]")
        assert "/analytics" in page.url
        await page.keyboard.press("e")
        at_error = "() => document.querySelector('dialog [data-role=scrubber]').value === '300500'"
        await wait_until(page, at_error)
        assert "JavaScript error" in await page.locator("dialog [data-role=current]").inner_text()
        await page.screenshot(path=str(artifacts / f"inv-dialog-{label}.png"))
        await assert_accessible(page, "session dialog")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("dialog.session-dialog", state="detached")
    else:
        await page.wait_for_url(f"**/sessions/{session_id}")
        await page.wait_for_selector("[data-player][data-ready=true]")
    assert page.js_errors == []


async def test_investigate_a_session_at_both_widths(
    browser, investigation_server, sessionmaker, artifacts_dir, tmp_path
):
    world = demo_world()
    jane = next(c for c in world.customers if c.email == "jane@acme.io")
    failed = jane.failed_transfers[0]
    seeded = await seed_checkout_session(sessionmaker, start=failed.created - timedelta(seconds=360.5))
    agent = await make_agent(sessionmaker, "agent", email="sam@example.com")
    for viewport, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await new_page(browser, viewport, investigation_server.url)
        try:
            await browser_sign_in(page, agent.email, PASSWORD)
            await investigate(page, label, str(seeded.id), artifacts_dir, tmp_path)
        finally:
            await page.context.close()


async def test_viewer_and_admin_pages(browser, live_server, sessionmaker, artifacts_dir):
    seeded = await seed_checkout_session(sessionmaker)
    await make_agent(sessionmaker, "viewer", email="vic@example.com")
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    for viewport, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await new_page(browser, viewport, live_server.url)
        try:
            await browser_sign_in(page, "vic@example.com", PASSWORD)
            await page.goto(f"/sessions/{seeded.id}")
            await page.wait_for_selector("[data-player][data-ready=true]")
            assert await page.locator("[data-recording=viewer]").count() == 1
            assert await page.locator("[data-export]").count() == 0
            assert "j***@acme.io" in await page.locator(".inv-title").inner_text()
            await page.wait_for_selector("[data-heatmap][data-points]")
            await page.screenshot(path=str(artifacts_dir / f"inv-session-viewer-{label}.png"), full_page=True)
            await assert_fits(page)
            assert page.js_errors == []
            await page.context.close()
            page = await new_page(browser, viewport, live_server.url)
            await browser_sign_in(page, "ada@example.com", PASSWORD)
            await page.goto("/admin/goals")
            await page.fill("#goal-value", "/pay")
            await page.fill("#goal-label", f"Reached payment {label}")
            await page.click("form[action='/admin/goals'] button[type=submit]")
            await page.wait_for_selector(f"text=Reached payment {label}")
            await page.screenshot(path=str(artifacts_dir / f"inv-goals-{label}.png"), full_page=True)
            await assert_fits(page)
            await assert_accessible(page)
            await page.click("button[aria-label='Delete goal /pay']")
            await page.wait_for_selector("text=No goals yet.")
            await page.goto("/?q=jane@acme.io")
            await page.wait_for_load_state("networkidle")
            await assert_accessible(page, "search page")
        finally:
            await page.context.close()
