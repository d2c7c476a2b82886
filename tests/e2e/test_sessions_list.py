"""The Sessions panel as a list that scales: compact rows, j / k / Enter, server-side sort and filter."""

from __future__ import annotations

from typing import Any

from supportlens_sandbox.sessions_demo import ensure_demo_site, seed_sessions
from tests.e2e.conftest import DESKTOP, browser_sign_in
from tests.e2e.test_investigation import assert_accessible, assert_fits, wait_until
from tests.support.agents import PASSWORD, make_agent

ROWS = "#panel-sessions .session-row"


async def _jane(page: Any, sessionmaker: Any, worker: Any, email: str) -> None:
    async with sessionmaker() as db:
        await ensure_demo_site(db, "http://127.0.0.1:8004")
        assert await seed_sessions(db, customers=3) >= 5
    await worker.drained()
    await make_agent(sessionmaker, "agent", email=email)
    await browser_sign_in(page, email, PASSWORD)
    await page.goto("/?q=jane@acme.io")
    await page.locator(ROWS).first.wait_for()


async def _rows_on_screen(page: Any) -> int:
    return int(
        await page.evaluate(
            """() => {
                 const header = document.querySelector('.topbar');
                 const top = header ? header.getBoundingClientRect().bottom : 0;
                 return [...document.querySelectorAll('#panel-sessions .session-row')].filter(r => {
                   const b = r.getBoundingClientRect();
                   return b.height > 0 && b.top >= top && b.bottom <= window.innerHeight; }).length; }"""
        )
    )


async def test_five_rows_a_screen_and_the_keyboard(desktop_page, sessionmaker, worker, artifacts_dir):
    page = desktop_page
    await _jane(page, sessionmaker, worker, "keys@example.com")
    await page.locator("#sessions-list").evaluate(
        """el => window.scrollBy(0, el.getBoundingClientRect().top
                                    - document.querySelector('.topbar').getBoundingClientRect().bottom)"""
    )
    shown = await _rows_on_screen(page)
    assert shown >= 5, f"{shown} session rows on a 1440x900 screen"
    row = page.locator(ROWS).first
    for fact in ("min", "page", "No signals|error|rage|dead", "%"):
        text = await row.inner_text()
        assert any(f in text for f in fact.split("|")), (fact, text)
    await page.screenshot(path=str(artifacts_dir / "sessions-list-desktop.png"))

    # j / k move a visible focus; not while typing in a field
    await page.locator("body").click(position={"x": 5, "y": 5})
    await page.keyboard.press("j")
    ids = await page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.sessionId)")
    focused = "() => document.activeElement && document.activeElement.dataset.sessionId"
    assert await page.evaluate(focused) == ids[0]
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    assert await page.evaluate(focused) == ids[2]
    await page.keyboard.press("k")
    assert await page.evaluate(focused) == ids[1]
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.locator("#sessions-from").focus()
    await page.keyboard.press("j")
    assert await page.evaluate("() => document.activeElement.id") == "sessions-from"
    await page.locator(ROWS).nth(1).focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/sessions/{ids[1]}")
    assert page.js_errors == []


async def test_sort_and_filter_on_the_server(desktop_page, phone_page, sessionmaker, worker, artifacts_dir):
    page = desktop_page
    await _jane(page, sessionmaker, worker, "sorter@example.com")
    troubles = "rs => rs.map(r => Number(r.dataset.trouble))"
    async with page.expect_response(lambda r: "sort=signals" in r.url) as answered:
        await page.select_option("#sessions-sort", "signals")
    assert (await answered.value).status == 200
    await wait_until(page, "document.querySelector('#sessions-sort').value === 'signals'")
    await page.locator(ROWS).first.wait_for()
    got = await page.locator(ROWS).evaluate_all(troubles)
    assert got == sorted(got, reverse=True) and got[0] > 0, got
    async with page.expect_response(lambda r: "signals=calm" in r.url):
        await page.select_option("#sessions-signals", "calm")
    await page.locator(ROWS).first.wait_for()
    calm = await page.locator(ROWS).evaluate_all(troubles)
    assert calm and set(calm) == {0}, calm
    async with page.expect_response(lambda r: "confidence=90" in r.url):
        await page.select_option("#sessions-confidence", "90")
    confidences = await page.locator(ROWS).evaluate_all("rs => rs.map(r => Number(r.dataset.confidence))")
    assert all(c >= 0.9 for c in confidences), confidences
    await assert_accessible(page, "sessions panel, filtered")
    bad = await page.request.get("/partials/sessions?customer=jane%40acme.io&sort=%3Cscript%3E")
    assert bad.status == 400 and (await bad.json())["field"] == "sort"

    phone = phone_page
    await browser_sign_in(phone, "sorter@example.com", PASSWORD)
    for theme in ("light", "dark"):
        await phone.emulate_media(color_scheme=theme)
        await phone.goto("/?q=jane@acme.io")
        await phone.click("#tab-sessions")
        await phone.locator(ROWS).first.wait_for()
        await phone.locator(ROWS).first.locator("summary").click()
        await assert_fits(phone)
        await assert_accessible(phone, f"sessions panel on a phone ({theme})")
        await phone.screenshot(path=str(artifacts_dir / f"sessions-list-phone-{theme}.png"), full_page=True)
    assert page.js_errors == [] and phone.js_errors == []
    assert DESKTOP["height"] == 900
