"""The Issues list and an issue page in a browser: real grouped data, both themes, both widths, axe, no
sideways scroll, the timeline drawn, the status form working, and Dwolla failing degrading one panel."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from supportlens.config import Settings
from supportlens.sessions.models import SessionEvent, UserSession
from supportlens_sandbox.world import demo_world
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.e2e.test_pages import assert_tables_stacked, settle
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)
from tests.investigation.seed import seed_checkout_session
from tests.issues.helpers import group_everything
from tests.support.agents import PASSWORD, make_agent

ERRORS = [
    ("TypeError: Cannot read properties of undefined (reading 'balance')", "https://shop.example/account"),
    ("Error: Request failed with status code 502", "https://shop.example/orders/8812"),
    ("TypeError: Failed to fetch", "https://shop.example/account/settings"),
    ("ReferenceError: Plaid is not defined", "https://shop.example/customers/cus_8f2k19/bank-accounts"),
]
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge"]
AMOUNT = "TypeError: Cannot read properties of undefined (reading 'amount')"


@pytest.fixture
def settings(settings_factory: Any, sims: Sims) -> Settings:  # noqa: F811
    return settings_factory(**sims.settings(), search_source_deadline_seconds=5)


async def seed(sessionmaker: Any) -> int:
    """A week of errors and rage clicks from 40 customers, and Jane's payment that failed near one."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    seeded = await seed_checkout_session(
        sessionmaker, start=jane.failed_transfers[0].created - timedelta(seconds=360.5)
    )
    async with sessionmaker() as db:
        for n in range(120):
            start = now - timedelta(hours=rng.uniform(0.5, 7 * 24))
            s = UserSession(
                clarity_project_id="proj1",
                clarity_user_id=f"dev-{n}",
                clarity_session_id=f"s{n:04d}x",
                session_start=start,
                session_end=start + timedelta(minutes=15),
                customer_email=f"customer{n % 40}@example.org",
                browser=rng.choice(BROWSERS),
                device_type=rng.choice(["desktop", "mobile"]),
            )
            db.add(s)
            await db.flush()
            message, url = rng.choices(ERRORS, [8, 4, 2, 1])[0]
            if n < 6:  # five more customers hit Jane's error in the hours before her
                start = seeded.first("error").timestamp - timedelta(hours=n + 1)
                s.session_start, s.session_end = start, start + timedelta(minutes=15)
                message, url = AMOUNT, "https://shop.example/pay"
            for k in range(rng.randint(1, 3)):
                db.add(
                    SessionEvent(
                        id=uuid.uuid4(),
                        session_id=s.id,
                        event_type="error",
                        timestamp=start + timedelta(minutes=k + 1),
                        page_url=url,
                        event_data={"message": message},
                    )
                )
            if rng.random() < 0.3:
                db.add(
                    SessionEvent(
                        id=uuid.uuid4(),
                        session_id=s.id,
                        event_type="rage_click",
                        timestamp=start + timedelta(minutes=5),
                        page_url="https://shop.example/checkout",
                        element_selector="main > form > button#apply-coupon.btn.btn-primary",
                    )
                )
        await db.commit()
    await group_everything(sessionmaker)
    async with sessionmaker() as db:
        await db.execute(text("UPDATE issues SET status = 'acknowledged' WHERE title LIKE '%status code%'"))
        await db.commit()
        row = await db.execute(
            text("SELECT issue_id FROM issue_occurrences WHERE event_id = :e"),
            {"e": seeded.first("error").id},
        )
        return int(row.scalar_one())


async def test_issues_list_and_issue_page(
    browser,
    live_server,
    sessionmaker,
    artifacts_dir,
    sims: Sims,  # noqa: F811
) -> None:
    issue_id = await seed(sessionmaker)
    await make_agent(sessionmaker, "agent", email="ines@example.com")
    desktop = await new_page(browser, DESKTOP, live_server.url)
    phone = await new_page(browser, PHONE, live_server.url)
    for page in (desktop, phone):
        await browser_sign_in(page, "ines@example.com", PASSWORD)
    try:
        for theme in ("light", "dark"):
            for page, width in ((desktop, "desktop"), (phone, "phone")):
                await page.emulate_media(reduced_motion="reduce", color_scheme=theme)
                await page.goto("/issues?window=all")
                await settle(page)
                rows = await page.locator("[data-testid=issue-row]").count()
                assert rows >= 6 and await page.locator("svg.issue-spark polyline").count() == rows
                await page.screenshot(
                    path=str(artifacts_dir / f"issues-list-{theme}-{width}.png"), full_page=True
                )
                await assert_fits(page)
                await assert_accessible(page, f"/issues ({theme}, {width})")
                if width == "phone":
                    await assert_tables_stacked(page, "/issues")

                await page.goto(f"/issues/{issue_id}")
                await settle(page)
                drawn = await page.evaluate(
                    "() => !!document.querySelector('[data-chart=issue-timeline]').__chart"
                )
                assert drawn
                assert await page.locator("[data-testid=issue-transfer]").count() == 1
                await page.screenshot(path=str(artifacts_dir / f"issue-{theme}-{width}.png"), full_page=True)
                await assert_fits(page)
                await assert_accessible(page, f"/issues/{issue_id} ({theme}, {width})")
                if width == "phone":
                    await assert_tables_stacked(page, "/issues/{id}")

        # Dwolla down: the transfers panel says so; the rest of the page is there.
        sims.dwolla.knobs(error_rate=1.0)
        await desktop.emulate_media(color_scheme="light")
        await desktop.goto(f"/issues/{issue_id}")
        await settle(desktop)
        assert await desktop.locator("[data-testid=issue-transfers-degraded]").is_visible()
        assert await desktop.locator("[data-testid=issue-example]").count() > 0
        await desktop.screenshot(
            path=str(artifacts_dir / "issue-dwolla-down-light-desktop.png"), full_page=True
        )
        await assert_accessible(desktop, "issue page, Dwolla down")
        sims.dwolla.knobs(error_rate=0.0)

        # The status form: acknowledge, and the list shows it.
        await desktop.click("button[name=status][value=acknowledged]")
        await desktop.wait_for_url(f"**/issues/{issue_id}")
        assert "acknowledged" in (await desktop.locator(".issue-facts .issue-status").inner_text())
        await desktop.goto("/issues?status=acknowledged&window=all")
        assert await desktop.locator(f"[data-issue-id='{issue_id}']").count() == 1
        assert desktop.js_errors == [] and phone.js_errors == []
    finally:
        await desktop.context.close()
        await phone.context.close()
