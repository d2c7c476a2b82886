"""Consent in Chromium on the demo shop (real clarity-js + supportlens.js on another origin): withdrawing
consent stops sending at once, whether through SupportLens.consent(false) or Clarity's consent v2."""

from __future__ import annotations

from typing import Any

import httpx2
from sqlalchemy import func, select

from supportlens.capture import sites
from supportlens.sessions.models import SessionEvent
from supportlens_sandbox.shop.app import DEMO_PASSWORD, create_shop_app
from tests.e2e.conftest import DESKTOP, new_page
from tests.support.browsers import BROWSER
from tests.support.live import LiveServer, free_port

PROJECT = "consentshop"
JANE = "jane@acme.io"


class IngestCounter:
    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.answers: list[int] = []
        self.bodies: list[str] = []
        page.on(
            "request",
            lambda r: self.bodies.append(r.post_data or "") if "/api/ingest/v1/events" in r.url else None,
        )
        page.on(
            "request", lambda r: self.requests.append(r.method) if "/api/ingest/v1/events" in r.url else None
        )
        page.on(
            "response",
            lambda r: (
                self.answers.append(r.status)
                if "/api/ingest/v1/events" in r.url and r.request.method == "POST"
                else None
            ),
        )

    @property
    def posts(self) -> int:
        return self.requests.count("POST")


async def _shop(browser: Any, live_server: Any, sessionmaker: Any, *, require_consent: bool = False):
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    async with sessionmaker() as db:
        _, key = await sites.create_site(
            db, name="Shop", origins=[origin], clarity_project_id=PROJECT, require_consent=require_consent
        )
    shop = LiveServer(
        create_shop_app(supportlens_url=live_server.url, site_key=key, clarity_project=PROJECT), port=port
    )
    shop.start()
    page = await new_page(browser, DESKTOP, origin)
    return shop, page, key, origin


async def _sign_in(page: Any) -> None:
    await page.goto("/signin")
    await page.fill("#email", JANE)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/")


async def _events(sessionmaker: Any) -> int:
    async with sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(SessionEvent)) or 0)


async def _activity(page: Any) -> None:
    for _ in range(3):
        await page.evaluate("SupportLens.track('probe', {n: 1})")
    await page.mouse.wheel(0, 400)
    await page.evaluate("SupportLens.flush()")
    await page.wait_for_timeout(700)


async def test_withdrawal_through_the_sdk_stops_sending_at_once(browser, live_server, sessionmaker):
    shop, page, _, _ = await _shop(browser, live_server, sessionmaker)
    try:
        counter = IngestCounter(page)
        await _sign_in(page)
        for _ in range(30):  # the SDK sends once Clarity's ids are known
            await page.evaluate("SupportLens.flush()")
            if 202 in counter.answers:
                break
            await page.wait_for_timeout(300)
        assert counter.posts >= 1 and await _events(sessionmaker) >= 1
        await page.evaluate("SupportLens.track('before', {}); SupportLens.consent(false)")
        await page.wait_for_timeout(300)  # let a request already in flight land
        sent_before, stored_before = counter.posts, await _events(sessionmaker)
        await _activity(page)
        await page.evaluate("SupportLens.track('after-withdrawal', {})")
        assert counter.posts == sent_before, "events were sent after consent was withdrawn"
        # Leaving the page (pagehide beacon) does not send what was recorded after the withdrawal either
        await page.click("a[data-slug=payroll-plus]")
        await page.wait_for_url("**/products/payroll-plus")
        await page.evaluate("SupportLens.consent(false)")
        await page.wait_for_timeout(500)
        assert not any("after-withdrawal" in b or "probe" in b for b in counter.bodies)
        assert await _events(sessionmaker) <= stored_before + 1  # at most the new page's own load event
        sent_before = counter.posts
        # Consent given again: sending resumes
        await page.evaluate("SupportLens.consent(true); SupportLens.track('after', {})")
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(800)
        assert counter.posts > sent_before
    finally:
        await page.context.close()
        shop.stop()


async def test_clarity_consent_v2_denied_stops_sending(browser, live_server, sessionmaker):
    shop, page, _, _ = await _shop(browser, live_server, sessionmaker, require_consent=True)
    try:
        counter = IngestCounter(page)
        await _sign_in(page)
        await page.evaluate("clarity('consentv2', {ad_Storage: 'denied', analytics_Storage: 'denied'})")
        await page.wait_for_timeout(300)
        before = counter.posts
        await _activity(page)
        await page.wait_for_timeout(1200)
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(500)
        assert counter.posts == before, "events were sent while Clarity consent was denied on a consent site"
        assert await _events(sessionmaker) == 0
    finally:
        await page.context.close()
        shop.stop()


async def test_a_consent_site_refuses_batches_without_consent(live_server, sessionmaker):
    """Server side: a site that requires consent stores nothing from a batch that lacks it."""
    from tests.security import hostile

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    async with sessionmaker() as db:
        _, key = await sites.create_site(db, name="Shop", origins=[origin], require_consent=True)
    async with httpx2.AsyncClient(headers=BROWSER, base_url=live_server.url) as c:
        for consent in (None, {"analytics": False}):
            body = {**hostile.batch(key), "consent": consent}
            body["page"]["url"] = f"{origin}/pay"
            resp = await c.post("/api/ingest/v1/events", json=body, headers={"Origin": origin})
            assert resp.status_code == 403, resp.text
        assert await _events(sessionmaker) == 0
        ok = await c.post(
            "/api/ingest/v1/events",
            json={**hostile.batch(key), "consent": {"analytics": True}},
            headers={"Origin": origin},
        )
        assert ok.status_code == 202 and await _events(sessionmaker) == 1
