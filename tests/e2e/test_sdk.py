"""supportlens.js in Chromium: consent (and its withdrawal), SPA navigation, queued Clarity calls, and
that it never throws into the host page, against the real ingest endpoint on another origin."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from supportlens.capture import sites
from tests.e2e.conftest import DESKTOP, new_page
from tests.support.live import LiveServer, free_port

PAGE = """<!doctype html><html><head><title>Host</title>
<script src="{sl}/sdk/v1/supportlens.js" data-site-key="{key}" data-clarity-project="hostproj"
 data-flush-interval="300" {extra}></script></head>
<body><button id="go">Go</button><a id="link" href="#x">Link</a><div id="out"></div>
<p style="height:2000px">long</p></body></html>"""


def host_app(sl: str, key: str, extra: str = "") -> Starlette:
    async def index(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE.format(sl=sl, key=key, extra=extra))

    return Starlette(routes=[Route("/", index), Route("/spa/{rest:path}", index)])


CLARITY_COOKIES = """
document.cookie = "_clck=hostuser1^2^0^0^0; path=/";
document.cookie = "_clsk=hostsess1^1700000000000^2^1^l.clarity.ms/collect; path=/";
"""


async def _setup(browser, live_server, sessionmaker, extra: str = "", require_consent: bool = False):
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    async with sessionmaker() as db:
        _, key = await sites.create_site(
            db, name="Host", origins=[origin], clarity_project_id="hostproj", require_consent=require_consent
        )
    server = LiveServer(host_app(live_server.url, key, extra), port=port).start()
    page = await new_page(browser, DESKTOP, origin)
    await page.add_init_script(CLARITY_COOKIES)
    sent: list[dict] = []

    def on_request(req: Any) -> None:
        if "/api/ingest/v1/events" in req.url and req.method == "POST":
            sent.append(json.loads(req.post_data))

    page.on("request", on_request)
    return server, page, sent


async def test_consent_required_then_given_then_withdrawn(browser, live_server, sessionmaker):
    server, page, sent = await _setup(
        browser, live_server, sessionmaker, extra='data-require-consent="true"', require_consent=True
    )
    try:
        await page.goto("/")
        await page.click("#go")
        await page.wait_for_timeout(900)
        assert sent == []  # nothing without consent
        async with page.expect_response(lambda r: "/api/ingest/v1/events" in r.url) as answer:
            await page.evaluate("SupportLens.consent(true)")
        assert (await answer.value).status == 202
        assert sent[-1]["consent"] == {"analytics": True}
        assert sent[-1]["clarity"] == {
            "projectId": "hostproj",
            "userId": "hostuser1",
            "sessionId": "hostsess1",
            "pageNum": 2,
        }  # from the _clck/_clsk cookies: no Clarity on this page
        assert {e["type"] for e in sent[-1]["events"]} >= {"navigation", "click"}
        # While consent was granted a batch may legitimately still go out (the first click's dead-click
        # timer fires 1 s after it); count from the withdrawal, once its in-flight requests are reported.
        await page.evaluate("SupportLens.consent(false)")
        await page.wait_for_timeout(300)
        before = len(sent)
        await page.click("#go")
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(1300)  # past the new click's dead-click timer too
        assert len(sent) == before  # withdrawal stops sending at once and drops the queue
        assert page.js_errors == []
    finally:
        await page.context.close()
        server.stop()


async def test_spa_navigation_identify_and_queued_clarity_calls(browser, live_server, sessionmaker):
    server, page, sent = await _setup(browser, live_server, sessionmaker)
    try:
        await page.goto("/")
        # identify before Clarity exists: the clarity("identify") call waits until Clarity is there
        await page.evaluate("SupportLens.identify({email: 'Jane@Acme.io', id: 'cus_1', name: 'Jane Doe'})")
        await page.evaluate("history.pushState({}, '', '/spa/checkout?step=2')")
        await page.evaluate("window.scrollTo(0, 1500)")
        await page.click("#go")
        await page.evaluate(
            "window.__calls = [];"
            "window.clarity = function () { window.__calls.push([].slice.call(arguments)); }"
        )
        await page.wait_for_timeout(800)
        calls = await page.evaluate("window.__calls")
        assert ["identify", "cus_1", None, None, "Jane Doe"] in calls
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(600)
        events = [e for b in sent for e in b["events"]]
        navs = [e for e in events if e["type"] == "navigation"]
        assert any(
            e["data"].get("how") == "pushState" and e["url"].endswith("/spa/checkout?step=2") for e in navs
        )
        assert sent[-1]["customer"] == {"email": "jane@acme.io", "id": "cus_1", "name": "Jane Doe"}
        click = next(e for e in events if e["type"] == "click")
        assert click["selector"] == "#go" and click["data"]["text"] == "Go" and click["x"] > 0
        assert len({e["id"] for e in events}) == len(events)
    finally:
        await page.context.close()
        server.stop()


async def test_never_throws_into_the_page(browser, live_server, sessionmaker):
    server, page, _ = await _setup(browser, live_server, sessionmaker)
    try:
        await page.add_init_script(
            "window.fetch = function () { throw new Error('no fetch'); };"
            "navigator.sendBeacon = function () { throw new Error('no beacon'); };"
        )
        await page.goto("/")
        results = await page.evaluate(
            """() => {
              const out = [];
              for (const call of [
                () => SupportLens.identify(null), () => SupportLens.identify('x'),
                () => SupportLens.identify({email: {toString() { throw new Error('bad'); }}}),
                () => SupportLens.track(undefined, {a: {b: 1}}), () => SupportLens.consent('yes'),
                () => SupportLens.flush(),
              ]) { try { call(); out.push('ok'); } catch (e) { out.push('threw ' + e); } }
              return out;
            }"""
        )
        assert results == ["ok"] * 6
        for _ in range(4):
            await page.click("#go")
        await page.wait_for_timeout(1500)
        assert page.js_errors == []
    finally:
        await page.context.close()
        server.stop()


async def test_retries_with_backoff_and_delivers_once(browser, live_server, sessionmaker):
    from sqlalchemy import func, select

    from supportlens.sessions.models import SessionEvent

    server, page, _ = await _setup(browser, live_server, sessionmaker)
    attempts: list[float] = []

    async def flaky(route: Any) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) <= 2:  # the first two deliveries fail: the batch is kept and retried later
            await route.fulfill(status=503, body="busy", headers={"Access-Control-Allow-Origin": "*"})
        else:
            await route.continue_()

    try:
        await page.route("**/api/ingest/v1/events", flaky)
        await page.goto("/")
        await page.click("#go")
        for _ in range(40):
            async with sessionmaker() as db:
                stored = await db.scalar(
                    select(func.count()).select_from(SessionEvent).where(SessionEvent.event_type == "click")
                )
            if stored:
                break
            await page.wait_for_timeout(250)
        assert stored == 1
        assert len(attempts) >= 3
        assert attempts[2] - attempts[1] >= 1.5  # backoff grows (1 s, then 2 s)
        assert page.js_errors == []
    finally:
        await page.context.close()
        server.stop()


async def test_reports_automation_and_a_persons_first_interaction(browser, live_server, sessionmaker):
    """Nothing done yet: `interacted` false; a real click makes it true; a click a script dispatches
    does not; `navigator.webdriver` is reported as the browser says it (these tests hide it, so the
    page is told it is true the way automation frameworks leave it)."""
    server, page, sent = await _setup(browser, live_server, sessionmaker)
    try:
        await page.goto("/")
        await page.evaluate(
            "document.getElementById('go').dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(600)
        assert sent and sent[-1]["automation"] == {"webdriver": False, "interacted": False}
        await page.click("#go")  # trusted input, as a person's
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(600)
        assert sent[-1]["automation"] == {"webdriver": False, "interacted": True}
    finally:
        await page.context.close()
        server.stop()

    server, page, sent = await _setup(browser, live_server, sessionmaker)
    try:
        await page.add_init_script("Object.defineProperty(navigator, 'webdriver', {get: () => true})")
        await page.goto("/")
        await page.click("#go")
        await page.evaluate("SupportLens.flush()")
        await page.wait_for_timeout(600)
        assert sent and sent[-1]["automation"]["webdriver"] is True
    finally:
        await page.context.close()
        server.stop()
