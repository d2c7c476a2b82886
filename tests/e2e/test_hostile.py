"""Stored script injection through the public ingest, then every agent page in Chromium: nothing runs.

Payloads set window.__pwned if they ever execute. Each page is also watched for Content-Security-Policy
violations (the console reports them): pages must need no inline script or style.
"""

from __future__ import annotations

from typing import Any

import httpx2
from sqlalchemy import select

from supportlens.auth import service
from supportlens.capture.sites import create_site
from supportlens.sessions.models import UserSession
from tests.e2e.conftest import DESKTOP, browser_sign_in, new_page
from tests.security import hostile
from tests.security.hostile import ORIGIN, XSS
from tests.support.agents import PASSWORD, make_agent
from tests.support.browsers import BROWSER


def watch_csp(page: Any) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return violations


async def _plant(server_url: str, sessionmaker: Any, agent_email: str) -> dict[str, str]:
    async with sessionmaker() as db:
        _, key = await create_site(db, name=XSS[0], origins=[ORIGIN], clarity_project_id="p1")
        token = await service.create_api_token(db, await service.get_agent_by_email(db, agent_email))
    async with httpx2.AsyncClient(headers=BROWSER, base_url=server_url, timeout=30) as c:
        resp = await c.post("/api/ingest/v1/events", json=hostile.xss_batch(key), headers={"Origin": ORIGIN})
        assert resp.status_code == 202, resp.text
        async with sessionmaker() as db:
            sid = str((await db.scalars(select(UserSession.id))).one())
        auth = {"Authorization": f"Bearer {token}"}
        note = await c.post(
            f"/api/clarity/sessions/{sid}/annotate",
            json={"offsetMs": 0, "note": XSS[1], "category": "issue", "severity": "high"},
            headers=auth,
        )
        assert note.status_code < 300, note.text
        for payload in XSS[:3]:
            await c.get("/api/search", params={"q": payload}, headers=auth)
    return {"session_id": sid}


async def test_injected_scripts_never_run_on_agent_pages(browser, live_server, sessionmaker, artifacts_dir):
    await make_agent(sessionmaker, "agent", email="agent@example.com")
    await make_agent(sessionmaker, "admin", email="admin@example.com")
    planted = await _plant(live_server.url, sessionmaker, "agent@example.com")
    sid = planted["session_id"]
    email = "victim@acme.io"
    pages = {
        "agent": [
            "/",
            f"/?q={XSS[0]}",
            f"/?q={email}",
            f"/sessions/{sid}",
            f"/customers/{email}/journey",
            f"/customers/{email}/analytics",
            f"/partials/sessions?customer={email}",
            "/account/security",
        ],
        "admin": [
            "/admin",
            "/admin/agents",
            "/admin/audit",
            "/admin/sites",
            "/admin/erasure",
            "/admin/goals",
            "/admin/clarity",
            f"/sessions/{sid}",
        ],
    }
    checked = 0
    for role, paths in pages.items():
        page = await new_page(browser, DESKTOP, live_server.url)
        violations = watch_csp(page)
        await browser_sign_in(page, f"{role}@example.com", PASSWORD)
        for path in paths:
            resp = await page.goto(path)
            assert resp is not None and resp.status < 500, f"{path}: {resp and resp.status}"
            await page.wait_for_load_state("networkidle")
            # open every <details> and tab so lazy content renders too
            await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            await page.wait_for_timeout(150)
            pwned = await page.evaluate("typeof window.__pwned === 'undefined' ? null : window.__pwned")
            assert pwned is None, f"an injected script ran on {path} (payload {pwned})"
            assert violations == [], f"CSP violations on {path}: {violations}"
            checked += 1
        await page.screenshot(path=str(artifacts_dir / f"hostile-{role}-session.png"), full_page=True)
        await page.context.close()
    assert checked == sum(len(p) for p in pages.values())


async def test_csp_watch_sees_a_violation(browser, live_server):
    """The watch above can fail: an inline script on our page is blocked and reported."""
    page = await new_page(browser, DESKTOP, live_server.url)
    violations = watch_csp(page)
    await page.goto("/login")
    await page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
        " document.body.appendChild(s); }"
    )
    await page.wait_for_timeout(200)
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert violations, "Chromium reported no CSP violation for an inline script"
    await page.context.close()
