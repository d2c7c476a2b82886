"""End to end: a customer uses the demo shop (real clarity-js + supportlens.js, another origin), then an
agent sees that session with its rage/dead/error badges and the exact Clarity ids the tracker reported."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from supportlens.capture import sites
from supportlens.sessions.models import UserSession
from supportlens.tasks.status import wait_until_drained
from supportlens_sandbox.shop.app import DEMO_PASSWORD, create_shop_app
from tests.e2e.conftest import DESKTOP, browser_sign_in, new_page
from tests.support.agents import PASSWORD, make_agent
from tests.support.live import LiveServer, free_port

PROJECT = "e2eshop"
JANE = "jane@acme.io"


async def _wait_for_session(sessionmaker: Any, page: Any, timeout: float = 20) -> UserSession:
    deadline = time.monotonic() + timeout
    while True:
        await page.evaluate("window.SupportLens && window.SupportLens.flush()")
        async with sessionmaker() as db:
            s = await db.scalar(select(UserSession).where(UserSession.customer_email == JANE))
        if s and s.rage_click_count and s.dead_click_count and s.error_count:
            return s
        assert time.monotonic() < deadline, f"session not complete in time: {s and s.__dict__}"
        await asyncio.sleep(0.5)


async def test_shop_session_reaches_the_agent_with_badges_and_exact_clarity_ids(
    browser, live_server, sessionmaker, artifacts_dir
):
    shop_port = free_port()
    shop_origin = f"http://127.0.0.1:{shop_port}"
    async with sessionmaker() as db:
        _, key = await sites.create_site(db, name="Shop", origins=[shop_origin], clarity_project_id=PROJECT)
    shop = LiveServer(
        create_shop_app(supportlens_url=live_server.url, site_key=key, clarity_project=PROJECT),
        port=shop_port,
    ).start()
    customer = await new_page(browser, DESKTOP, shop_origin)
    try:
        ingest_answers: list[int] = []
        customer.on(
            "response",
            lambda r: ingest_answers.append(r.status) if "/api/ingest/v1/events" in r.url else None,
        )
        await customer.goto("/signin")
        await customer.fill("#email", JANE)
        await customer.fill("#password", DEMO_PASSWORD)
        await customer.click("button[type=submit]")
        await customer.wait_for_url(f"{shop_origin}/")
        await customer.click("a[data-slug=payroll-plus]")
        await customer.wait_for_url("**/products/payroll-plus")
        await customer.click("#details-toggle")  # changes the DOM: not a dead click
        await customer.mouse.wheel(0, 600)
        await customer.click("#buy")
        await customer.wait_for_url("**/pay?product=payroll-plus")
        for _ in range(3):  # three fast clicks on a button that does nothing
            await customer.click("#pay-now", delay=20)
        await customer.wait_for_timeout(1300)  # dead-click window
        await customer.click("#pay-saved")  # throws a TypeError in the shop's code
        await customer.wait_for_timeout(200)
        assert any("charge" in e for e in customer.js_errors), customer.js_errors

        meta = await customer.evaluate(
            "() => new Promise(resolve => window.clarity('metadata', m => resolve(m), false))"
        )
        assert meta["projectId"] == PROJECT and meta["userId"] and meta["sessionId"]
        assert int(meta["pageNum"]) >= 3  # one Clarity session across the shop's pages
        session = await _wait_for_session(sessionmaker, customer)
        assert (session.clarity_user_id, session.clarity_session_id) == (meta["userId"], meta["sessionId"])
        assert session.page_views >= 3 and session.customer_name == "Jane Doe"
        assert session.client_ip == "127.0.0.1" and session.browser and session.device_type == "desktop"
        assert ingest_answers and all(code == 202 for code in ingest_answers), ingest_answers
        await customer.screenshot(path=str(artifacts_dir / "shop-pay.png"), full_page=False)
    finally:
        await customer.context.close()
        shop.stop()

    # The agent's side: the Sessions panel and the API for that customer, once the server's worker mapped it.
    await wait_until_drained(sessionmaker, within=30)
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    agent = await new_page(browser, DESKTOP, live_server.url)
    try:
        await browser_sign_in(agent, "sam@example.com", PASSWORD)
        api = await agent.request.get(f"/api/clarity/sessions?customer={JANE}")
        items = (await api.json())["items"]
        assert len(items) == 1, (items, session.automated, session.human_interaction, session.user_agent)
        item = items[0]
        expected = (
            f"https://clarity.microsoft.com/player/{meta['projectId']}/{meta['userId']}/{meta['sessionId']}"
        )
        assert item["recordingUrl"] == expected and item["hasRecording"] is True
        assert item["signals"]["rageClicks"] >= 1 and item["signals"]["deadClicks"] >= 1
        assert item["signals"]["errors"] >= 1
        assert item["mapping"]["method"] == "email_match" and item["mapping"]["confidence"] == 1.0

        await agent.goto(f"/?q={JANE}")  # the agent searches the customer; the Sessions panel loads
        card = agent.locator(".session-card")
        await card.first.wait_for()
        assert await card.count() == 1
        assert await card.locator(".signal--rage").is_visible()
        assert await card.locator(".signal--dead").is_visible()
        assert await card.locator(".signal--error").is_visible()
        href = await card.locator("a.session-card__recording").get_attribute("href")
        assert href == expected
        assert await card.locator(f"a[href='/sessions/{item['id']}']").count() >= 1
        await agent.screenshot(path=str(artifacts_dir / "sessions-panel-e2e.png"), full_page=True)
        assert agent.js_errors == []
    finally:
        await agent.context.close()
