"""Stored XSS: a batch with <script> and <img onerror> payloads in every string field is stored (masked
where PII) and renders inert in the agent's pages, checked in Chromium."""

from __future__ import annotations

from sqlalchemy import select

from supportlens.capture import sites
from supportlens.sessions.models import SessionEvent, UserSession
from tests.e2e.conftest import DESKTOP, browser_sign_in, new_page
from tests.support.agents import PASSWORD, make_agent
from tests.support.ingest import ORIGIN, PROJECT, batch, event, headers

S = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror="window.__xss=2">'
EVIL_EMAIL = "<img/src=x/onerror=window.__xss=3>@acme.io"


def payload_batch(key: str, email: str, sid: str) -> dict:
    body = batch(
        key,
        [
            event("navigation", url=f"{ORIGIN}/{S}?q={IMG}", data={"from": IMG, "how": S}),
            event(
                "click", url=f"{ORIGIN}/p{IMG}", selector=f"button{S}{IMG}", x=1, y=2, data={"text": IMG + S}
            ),
            event("error", url=f"{ORIGIN}/{S}", data={"message": S, "source": IMG, "stack": S + IMG}),
            event("rage_click", url=f"{ORIGIN}/{IMG}", selector=IMG, data={"text": S}),
            event("dead_click", url=f"{ORIGIN}/{S}", selector=S, data={"text": IMG}),
            event("form_submit", url=f"{ORIGIN}/{IMG}", data={"action": IMG}),
            event("custom", url=f"{ORIGIN}/{IMG}", data={"name": S, IMG[:30]: S}),
        ],
        session_id=sid,
        customer={"email": email, "id": S[:120], "name": IMG},
    )
    body["page"] = {"url": f"{ORIGIN}/{IMG}", "title": S, "referrer": IMG, "viewport": {"w": 1, "h": 1}}
    return body


async def _inert(page) -> None:
    assert await page.evaluate("window.__xss") is None
    injected = await page.evaluate(
        "() => [...document.querySelectorAll('img[src=\"x\"], script:not([src])')]"
        ".filter(n => !(n.type === 'application/json')).length"
    )
    assert injected == 0
    assert page.js_errors == []


async def test_payloads_render_inert_in_agent_pages(
    client, browser, live_server, sessionmaker, artifacts_dir
):
    async with sessionmaker() as db:
        _, key = await sites.create_site(
            db, name=f"Evil {S}{IMG}", origins=[ORIGIN], clarity_project_id=PROJECT
        )
    for email, sid in (("jane@acme.io", "xss1"), (EVIL_EMAIL, "xss2")):
        r = await client.post(
            "/api/ingest/v1/events", json=payload_batch(key, email, sid), headers=headers(ua=S + IMG)
        )
        assert r.status_code == 202, r.text
    async with sessionmaker() as db:
        stored = (await db.scalars(select(SessionEvent))).all()
        assert len(stored) == 14 and any(S in (e.element_selector or "") for e in stored)  # kept as text
        session_ids = (await db.scalars(select(UserSession.id))).all()

    await make_agent(sessionmaker, "admin", email="ada@example.com")
    page = await new_page(browser, DESKTOP, live_server.url)
    try:
        await browser_sign_in(page, "ada@example.com", PASSWORD)
        for email in ("jane@acme.io", EVIL_EMAIL):
            await page.goto("/partials/sessions?customer=" + __import__("urllib.parse").parse.quote(email))
            assert await page.locator(".session-card").count() == 1
            await page.locator(".session-row__more > summary").click()  # the row's "Details"
            text = await page.locator(".session-card").inner_text()
            assert "<img" in text or "<script>" in text  # shown as text, not markup
            await _inert(page)
        await page.screenshot(path=str(artifacts_dir / "xss-panel.png"), full_page=True)
        await page.goto("/admin/sites")
        assert "<script>" in await page.locator(".sites-table").inner_text()
        await _inert(page)
        for sid in session_ids:  # the session page, where it exists
            resp = await page.goto(f"/sessions/{sid}")
            if resp.status == 200:
                await page.wait_for_timeout(300)
                await _inert(page)
        api = await page.request.get(f"/api/clarity/sessions/{session_ids[0]}/events")
        assert api.headers["content-type"].startswith("application/json")
    finally:
        await page.context.close()
