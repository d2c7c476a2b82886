"""The session page tells the session's story: seekable steps, ?t=, Clarity's own view, copy buttons."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from supportlens.insights import service
from supportlens.sessions.models import UserSession
from supportlens_sandbox.clarity.simulator import SimPage, SimSession
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_investigation import assert_accessible, assert_fits, scrub_value, wait_until
from tests.insights.support import PROJECT, TOKEN, running_simulator
from tests.investigation.seed import SHOP, seed_checkout_session
from tests.support.agents import PASSWORD, make_agent

SHOTS = Path("/work/shots/story")


@pytest.fixture
def sim():
    with running_simulator(site_origin="https://shop.example") as s:
        yield s


@pytest.fixture
def settings(settings_factory, sim):
    return settings_factory(
        **sim.settings(clarity_recordings_enabled=True, clarity_recordings_window_minutes=3 * 24 * 60)
    )


async def _clarity_recorded(sessionmaker: Any, settings: Any, sim: Any, seeded: Any) -> None:
    """Clarity's side: the site's insights and this session in its recordings list, read for real."""
    for key in ("url_device", "traffic"):
        sched = next(s for s in service.SCHEDULES if s.key == key)
        result = await service.pull_insights(
            sessionmaker, settings, schedule=key, dimensions=sched.dimensions
        )
        assert result.ok, result.message
    s = seeded.session
    async with sessionmaker() as db:
        await db.execute(update(UserSession).where(UserSession.id == s.id).values(clarity_project_id=PROJECT))
        await db.commit()
    sim.state.add_session(
        SimSession(
            PROJECT,
            s.clarity_user_id,
            s.clarity_session_id,
            started_at=s.session_start,
            duration_seconds=362,
            active_seconds=48,
            clicks=9,
            pages=[SimPage(f"{SHOP}/", "Shop home"), SimPage(f"{SHOP}/pay", "Pay", start_ms=100_000)],
            rage=2,
            dead=3,
        )
    )
    result = await service.pull_recordings(sessionmaker, settings)
    assert result.outcome == "ok" and result.matched == 1, result.message


async def _shoot(page: Any, name: str, artifacts: Path) -> None:
    await page.evaluate("() => window.scrollTo(0, 0)")  # ?t= scrolled to the step; shoot from the top
    path = artifacts / f"story-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    for n in range(3):  # the long phone page in readable parts
        clip = {"x": 0, "y": n * 1100, "width": page.viewport_size["width"], "height": 1100}
        await page.screenshot(path=str(artifacts / f"story-{name}-part{n}.png"), full_page=True, clip=clip)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


async def test_story_seeks_opens_at_t_and_shows_clarity(
    browser, live_server, sessionmaker, settings, sim, artifacts_dir
):
    seeded = await seed_checkout_session(sessionmaker)
    await _clarity_recorded(sessionmaker, settings, sim, seeded)
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    sid = str(seeded.session.id)

    page = await new_page(browser, DESKTOP, live_server.url)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        await browser_sign_in(page, "sam@example.com", PASSWORD)
        await page.goto(f"/sessions/{sid}")
        await page.wait_for_selector("[data-player][data-ready=true]")

        # the story: three page visits, the rage clicks collapsed with a count, the error standing out
        story = page.locator("[data-role=story]")
        assert await story.locator(".story-visit:not(.story-end)").count() == 3
        rage = story.locator(".story-step.kind-rage")
        assert " ".join((await rage.inner_text()).split()) == "1:50 Rage clicked Pay later 5× in 2 s (rage)"
        error = story.locator(".story-step.kind-error")
        assert "TypeError: Cannot read properties of undefined" in await error.inner_text()
        assert "notable" in (await error.get_attribute("class") or "")
        assert (
            "left after 6 min 0 s from /pay" in await page.locator("[data-role=story-summary]").inner_text()
        )
        assert "Left after 6 min 0 s" in await story.locator(".story-end").inner_text()

        # clicking a step seeks: the scrubber and ?t= move there, the step is marked
        await rage.locator("button").click()
        await wait_until(page, "() => location.search.includes('t=110000')")
        assert await scrub_value(page) == 110_000
        assert await rage.locator("button").get_attribute("aria-current") == "step"
        assert "Pay later" in await page.locator("[data-role=current]").inner_text()
        # the player's own controls still work and move the story's mark
        await page.locator("body").focus()
        await page.keyboard.press("e")
        await wait_until(page, "() => document.querySelector('[data-role=scrubber]').value === '300500'")
        assert await error.locator("button").get_attribute("aria-current") == "step"

        # Clarity's view beside ours; the site-wide context for /pay
        cv = page.locator("[data-role=clarity-view]")
        assert await cv.get_attribute("data-state") == "enriched"
        figures = " ".join((await cv.locator("[data-role=clarity-figures]").inner_text()).split())
        assert "Duration 6 min 2 s · ours 6 min 0 s" in figures
        assert "Rage clicks 2 · ours 1" in figures and "Dead clicks 3 · ours 3" in figures
        assert await page.locator(".site-context-item[data-path='/pay']").count() == 1
        # ... and the story's /pay visit says so where the agent reads about the rage clicks
        pay_visit = story.locator(".story-visit", has=page.locator(".story-step.kind-rage"))
        assert await pay_visit.locator("[data-role=site-wide]").inner_text() == "Broken for everyone"
        assert await story.locator("[data-role=site-wide]").count() == 1

        # copy buttons: the session id lands on the clipboard and "Copied" is announced
        copy = page.locator(".inv-h1 button[data-copy]")
        assert await copy.get_attribute("aria-label") == "Copy session id"
        await copy.focus()
        await page.keyboard.press("Enter")
        status = page.locator(".inv-h1 [data-copy-status]")
        await wait_until(
            page, "() => document.querySelector('.inv-h1 [data-copy-status]').textContent === 'Copied'"
        )
        assert await status.get_attribute("aria-live") == "polite"
        assert await page.evaluate("() => navigator.clipboard.readText()") == "s1abc"
        link = page.locator(".inv-recording button[data-copy]")
        assert (
            await link.get_attribute("data-copy") == "https://clarity.microsoft.com/player/proj1/user1/s1abc"
        )
        assert await page.locator("[data-role=customer-email] + .copy-wrap button").get_attribute(
            "data-copy"
        ) == ("jane@acme.io")
        # times in the agent's zone, UTC on hover
        start = page.locator(".inv-title time")
        assert await start.get_attribute("data-localized") == ""
        assert "UTC" in (await start.get_attribute("title") or "")
        assert page.js_errors == []

        # /sessions/{id}?t= opens at that step: marked and scrolled into view
        await page.goto(f"/sessions/{sid}?t=300600")
        await page.wait_for_selector("[data-player][data-ready=true]")
        await wait_until(page, "() => !!document.querySelector('.story-step.current')")
        current = page.locator(".story-step.current")
        assert "TypeError" in await current.inner_text()
        assert await scrub_value(page) == 300_600
        in_view = """() => {
          const r = document.querySelector('.story-step.current').getBoundingClientRect();
          const l = document.querySelector('[data-role=story-list]').getBoundingClientRect();
          return r.top >= 0 && r.bottom <= innerHeight && r.top >= l.top && r.bottom <= l.bottom; }"""
        assert await page.evaluate(in_view)
        assert page.js_errors == []
    finally:
        await page.context.close()

    # both widths, both themes, Clarity on; then Clarity failing
    for state in ("clarity-on", "clarity-failing"):
        if state == "clarity-failing":
            sim.state.forbidden_tokens.add(TOKEN)
            result = await service.pull_recordings(sessionmaker, settings)
            assert result.outcome == "forbidden", result.message
        for viewport, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
            page = await new_page(browser, viewport, live_server.url)
            try:
                await browser_sign_in(page, "sam@example.com", PASSWORD)
                for theme in ("light", "dark"):
                    await page.emulate_media(reduced_motion="reduce", color_scheme=theme)
                    await page.goto(f"/sessions/{sid}?t=110000")
                    await page.wait_for_selector("[data-player][data-ready=true]")
                    await wait_until(page, "() => !!document.querySelector('.story-step.current')")
                    await page.wait_for_selector("[data-heatmap][data-points]")
                    if state == "clarity-failing":
                        note = page.locator("[data-role=clarity-failure]")
                        assert "another Clarity project" in await note.inner_text()
                        assert "figures below are from an earlier read" in await note.inner_text()
                    await _shoot(page, f"{state}-{theme}-{width}", artifacts_dir)
                    await assert_fits(page)
                    await assert_accessible(page, f"session story ({state}, {theme}, {width})")
                assert page.js_errors == []
            finally:
                await page.context.close()


async def test_viewer_sees_the_story_and_the_email_masked(browser, live_server, sessionmaker):
    seeded = await seed_checkout_session(sessionmaker)
    await make_agent(sessionmaker, "viewer", email="vic@example.com")
    page = await new_page(browser, PHONE, live_server.url)
    try:
        await browser_sign_in(page, "vic@example.com", PASSWORD)
        await page.goto(f"/sessions/{seeded.session.id}")
        await page.wait_for_selector("[data-player][data-ready=true]")
        assert await page.locator(".story-step.kind-rage").count() == 1
        copy = page.locator("[data-role=customer-email] + .copy-wrap button")
        assert await copy.get_attribute("data-copy") == "j***@acme.io"
        assert await page.locator(".inv-recording").count() == 0  # viewers get no recording link
        assert "jane@acme.io" not in await page.content()
        assert page.js_errors == []
    finally:
        await page.context.close()
