"""The session view tells the agent whether a page is broken for everyone (Clarity site context)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from supportlens.insights import service
from supportlens.sessions.models import UserSession
from tests.e2e.conftest import browser_sign_in
from tests.insights.support import PROJECT, running_simulator
from tests.investigation.seed import seed_checkout_session
from tests.support.agents import PASSWORD, make_agent


@pytest.fixture
def sim():
    with running_simulator(site_origin="https://shop.example") as s:
        yield s


@pytest.fixture
def settings(settings_factory, sim):
    return settings_factory(**sim.settings())


async def test_session_view_shows_site_context_for_its_pages(
    desktop_page, phone_page, settings, sessionmaker, artifacts_dir
):
    for key in ("url_device", "traffic"):
        sched = next(s for s in service.SCHEDULES if s.key == key)
        result = await service.pull_insights(
            sessionmaker, settings, schedule=key, dimensions=sched.dimensions
        )
        assert result.ok, result.message
    seeded = await seed_checkout_session(sessionmaker)
    async with sessionmaker() as db:  # the session was recorded by the Clarity project the snapshots are for
        await db.execute(
            update(UserSession).where(UserSession.id == seeded.session.id).values(clarity_project_id=PROJECT)
        )
        await db.commit()
    await make_agent(sessionmaker, "agent", email="sam@example.com")

    for page, label in ((desktop_page, "desktop"), (phone_page, "phone")):
        await browser_sign_in(page, "sam@example.com", PASSWORD)
        await page.goto(f"/sessions/{seeded.session.id}")
        pay = page.locator(".site-context-item[data-path='/pay']")
        await pay.wait_for()
        assert await pay.get_attribute("data-verdict") == "site_wide"
        assert await pay.locator(".badge").inner_text() == "Broken for everyone"
        assert "the site's average" in await pay.inner_text()
        await pay.scroll_into_view_if_needed()
        await page.screenshot(path=str(artifacts_dir / f"session-site-context-{label}.png"), full_page=True)
        assert page.js_errors == []
