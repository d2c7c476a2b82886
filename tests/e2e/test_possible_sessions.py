"""Possible sessions under the Sessions panel, from the demo's seeded sessions plus a family tablet:
collapsed, opened, confirmed and dismissed, at both widths in both themes (axe, no sideways scroll)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supportlens.capture import sites
from supportlens.capture.ingest import ingest_batch
from supportlens.capture.schemas import IngestBatch
from supportlens_sandbox.sessions_demo import (
    DEMO_CLARITY_PROJECT,
    DEMO_SITE_KEY,
    UAS,
    ensure_demo_site,
    seed_sessions,
)
from supportlens_sandbox.world import demo_world
from tests.e2e.conftest import browser_sign_in
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.support.agents import PASSWORD, make_agent

SHOTS = Path("/tmp/shots/possible")
ORIGIN = "http://127.0.0.1:8004"
CAFE_IP = "198.51.100.77"
FAMILY_IP = "198.51.100.200"
LIGHT_BG, DARK_BG = "rgb(245, 247, 251)", "rgb(15, 20, 32)"


async def _visit(
    db: Any, site: Any, start: datetime, *, session: str, email: str | None, ip: str = FAMILY_IP
) -> None:
    """One visit of the family tablet, sent through ingest as the shop's script sends it."""
    events = [
        {
            "id": str(uuid.uuid4()),
            "type": kind,
            "ts": (start + timedelta(seconds=20 * i)).isoformat().replace("+00:00", "Z"),
            "url": f"{ORIGIN}/",
            **({"selector": "a.product-link", "x": 200, "y": 300} if kind == "click" else {}),
        }
        for i, kind in enumerate(("navigation", "click", "click"))
    ]
    body = {
        "siteKey": DEMO_SITE_KEY,
        "clarity": {"projectId": DEMO_CLARITY_PROJECT, "userId": "family-tablet", "sessionId": session},
        "customer": {"email": email} if email else None,
        "consent": {"analytics": True},
        "events": events,
    }
    site = await sites.make_cache(0).by_key(db, DEMO_SITE_KEY)
    await ingest_batch(
        db,
        site,
        IngestBatch.model_validate_json(json.dumps(body)),
        client_ip=ip,
        user_agent=UAS["tablet"],
    )


async def _seed(sessionmaker: Any) -> None:
    """The demo's sessions, and a tablet at home signed in as Jane and as another customer, then used
    three times away from home by nobody signed in: about as likely Jane's as the other's, so possible
    sessions (a browser two customers signed in on is no one's, so never listed by default)."""
    other = demo_world().customers[1].email
    now = datetime.now(UTC).replace(microsecond=0)
    async with sessionmaker() as db:
        await ensure_demo_site(db, ORIGIN)
        assert await seed_sessions(db, customers=3) >= 5
        site = await sites.make_cache(0).by_key(db, DEMO_SITE_KEY)
        await _visit(db, site, now - timedelta(days=9), session="fam-jane", email="jane@acme.io")
        await _visit(db, site, now - timedelta(days=8), session="fam-other", email=other)
        for n, days in enumerate((5, 3, 1)):
            # Taken out of the house (a café's network): only the browser says whose it may be.
            at = now - timedelta(days=days, hours=n)
            await _visit(db, site, at, session=f"fam-anon{n}", email=None, ip=CAFE_IP)


async def _open_panel(page: Any, phone: bool) -> Any:
    await page.goto("/?q=jane@acme.io")
    if phone:
        await page.click("#tab-sessions")
    possible = page.locator("#sessions-possible")
    await possible.wait_for()
    return possible


async def test_possible_sessions_in_the_panel(desktop_page, phone_page, sessionmaker, worker):
    await _seed(sessionmaker)
    await worker.drained()  # the batches are mapped
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for page, width in ((desktop_page, "desktop"), (phone_page, "phone")):
        await browser_sign_in(page, "sam@example.com", PASSWORD)
        for theme in ("light", "dark"):
            await page.emulate_media(reduced_motion="reduce", color_scheme=theme)
            possible = await _open_panel(page, width == "phone")
            summary = possible.locator("summary")
            assert (await summary.inner_text()).startswith("3 possible sessions — same browser")
            assert await possible.locator(".possible-session").first.is_hidden()  # collapsed
            await summary.click()
            items = possible.locator(".possible-session")
            assert await items.count() == 3
            assert "signed in as 2 different customers" in await items.first.inner_text()
            assert await page.evaluate("() => getComputedStyle(document.body).backgroundColor") == (
                DARK_BG if theme == "dark" else LIGHT_BG
            )
            await assert_fits(page)
            await assert_accessible(page, f"possible sessions ({theme}, {width})")
            # The heading at the top, below the sticky header, with the first possible sessions.
            await summary.evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -140); }")
            await page.screenshot(path=str(SHOTS / f"panel-{width}-{theme}.png"))
            await page.screenshot(path=str(SHOTS / f"panel-{width}-{theme}-full.png"), full_page=True)
        assert page.js_errors == []

    # An agent confirms the newest and dismisses the next; both stay decided when the panel reloads.
    page = desktop_page  # in the dark theme, the last one above
    possible = await _open_panel(page, False)
    await possible.locator("summary").click()
    first, second = possible.locator(".possible-session").nth(0), possible.locator(".possible-session").nth(1)
    confirmed_id = await first.get_attribute("data-session-id")
    await first.get_by_role("button", name="Confirm").click()
    await page.locator(f"#possible-{confirmed_id} .possible-session__outcome").wait_for()
    assert "Confirmed" in await page.locator(f"#possible-{confirmed_id}").inner_text()
    # The swapped-in item's time is in the agent's zone too (static/js/localtime.js).
    await page.locator(f"#possible-{confirmed_id} time[data-localized]").wait_for()
    dismissed_id = await second.get_attribute("data-session-id")
    await second.get_by_placeholder("Why (optional)").fill("my brother's tablet")
    await second.get_by_role("button", name="Dismiss").click()
    await page.locator(f"#possible-{dismissed_id} .possible-session__outcome").wait_for()
    await assert_accessible(page, "possible sessions after decisions")
    await page.screenshot(path=str(SHOTS / "panel-desktop-dark-decided.png"))

    possible = await _open_panel(page, False)
    assert (await possible.locator("summary").inner_text()).startswith("1 possible session —")
    assert await page.locator(f'.sessions-list .session-row[data-session-id="{confirmed_id}"]').count() == 1
    assert await page.locator(f'.sessions-list .session-row[data-session-id="{dismissed_id}"]').count() == 0
    assert page.js_errors == []
