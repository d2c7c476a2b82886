"""Needs attention in the browser, wired as `supportlens demo` wires it: a transfer fails in the Dwolla
simulator → its signed webhook reaches the app → the case is on the agent's home page within 5 s → the
agent takes it, adds the session moment to HubSpot (the note is in the HubSpot simulator with the
recording link) and opens the customer with the summary ready. Both widths, both themes, axe-clean, with
screenshots (and the admin page with Dwolla failing)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from supportlens.app import create_app
from supportlens.attention.models import DwollaWebhookEvent
from supportlens_sandbox.crm_demo import today_world
from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.hubspot.app import HUBSPOT_TOKEN, create_hubspot_app
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.investigation.seed import seed_checkout_session
from tests.support.agents import PASSWORD, make_agent
from tests.support.live import LiveServer, free_port

SECRET = "whsec-e2e-91c3d0"
SHOTS = Path(os.environ.get("SUPPORTLENS_SHOTS_DIR", "/work/shots/hooks"))
WORLD = today_world()
JANE = WORLD.customer("jane@acme.io")
# Another customer with a bank account and no sessions here
OTHER = next(
    c
    for c in WORLD.dwolla_customers
    if c.dwolla_id
    and c.dwolla_id != JANE.dwolla_id
    and c.dwolla_first_name
    and any(fs.type == "bank" and not fs.removed for fs in c.funding_sources)
)


class Loop:
    def __init__(self, app: LiveServer, dwolla: LiveServer, dwolla_app: Any, hubspot_app: Any) -> None:
        self.app, self.dwolla, self.dwolla_app, self.hubspot_app = app, dwolla, dwolla_app, hubspot_app

    def fail(self, dwolla_id: str, amount: str, code: str) -> str:
        body = {"customerId": dwolla_id, "amount": amount, "code": code}
        answer = httpx2.post(f"{self.dwolla.url}/__sandbox/transfer-failures", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["transferId"])


@pytest.fixture
def loop(settings_factory: Any, engine: Any) -> Iterator[Loop]:
    hubspot_app, dwolla_app = create_hubspot_app(WORLD), create_dwolla_app(WORLD)
    with LiveServer(hubspot_app) as hs, LiveServer(dwolla_app) as dw:
        settings = settings_factory(
            hubspot_base_url=hs.url,
            hubspot_token=HUBSPOT_TOKEN,
            dwolla_base_url=dw.url,
            dwolla_key=DWOLLA_KEY,
            dwolla_secret=DWOLLA_SECRET,
            dwolla_webhook_secret=SECRET,
            search_source_deadline_seconds=3,
            run_worker=True,
            run_schedule=False,
        )
        port = free_port()
        settings = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
        with LiveServer(create_app(settings), port=port) as server:
            dwolla_app.state.webhooks.subscribe(f"{server.url}/api/webhooks/dwolla", SECRET)
            yield Loop(server, dw, dwolla_app, hubspot_app)


async def test_a_failed_transfer_reaches_needs_attention_and_an_agent_takes_it(
    browser: Any, loop: Loop, sessionmaker: Any
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    seeded = await seed_checkout_session(sessionmaker, email="jane@acme.io", start=now - timedelta(minutes=6))
    await make_agent(sessionmaker, "agent", email="sam@example.com")
    await make_agent(sessionmaker, "admin", email="ada@example.com")

    page = await new_page(browser, DESKTOP, loop.app.url)
    await browser_sign_in(page, "sam@example.com", PASSWORD)
    await page.goto("/")
    await page.locator("[data-testid=attention-empty]").wait_for()

    started = time.monotonic()
    transfer = loop.fail(JANE.dwolla_id, "80.00", "R01")
    jane = page.locator("[data-testid=attention-case]").first
    await jane.wait_for(timeout=5000)
    appeared = time.monotonic() - started
    assert appeared < 5.0, f"the case appeared after {appeared:.1f} s"
    text = await jane.inner_text()
    assert "Jane Doe" in text and "jane@acme.io" in text and "$80.00" in text and "R01" in text
    assert "insufficient funds" in text
    moment = jane.locator("[data-testid=attention-moment]")
    assert (await moment.inner_text()).startswith("JavaScript error")
    assert await moment.get_attribute("href") == f"/sessions/{seeded.id}?t=300500"

    # a second failure, for a customer with no session trouble: listed after Jane's
    loop.fail(OTHER.dwolla_id, "1240.00", "R02")
    await page.locator("[data-testid=attention-case]").nth(1).wait_for(timeout=5000)
    assert "Jane Doe" in await page.locator("[data-testid=attention-case]").first.inner_text()

    await jane.locator("[data-testid=attention-take]").click()
    assignee = page.locator("[data-testid=attention-case]").first.locator("[data-testid=attention-assignee]")
    await assignee.wait_for()
    assert await assignee.inner_text() == "Taken by you"
    assert await page.locator("[data-testid=attention-case]").first.get_attribute("data-status") == "taken"

    # ... and closes the loop in HubSpot: from the case's moment, Add to HubSpot on Jane's ticket; the
    # note is in HubSpot (the simulator) on the contact and the ticket, with the Clarity recording link.
    notes = loop.hubspot_app.state.data.objects["notes"]
    before = len(notes)
    session_page = await new_page(browser, DESKTOP, loop.app.url)
    try:
        await browser_sign_in(session_page, "sam@example.com", PASSWORD)
        await session_page.goto(f"/sessions/{seeded.id}?t=300500")
        await session_page.wait_for_selector("[data-player][data-ready=true]")
        await session_page.click("[data-action=hs-open]")
        await session_page.wait_for_selector("[data-role=hs-dialog][open]")
        ticket = JANE.ticket_ids[0]
        await session_page.check(f"[data-role=hs-ticket-list] input[value='{ticket}']")
        await session_page.fill(
            "[data-role=hs-dialog] textarea[name=comment]", "R01 right after the Pay error."
        )
        await session_page.click("[data-role=hs-submit]")
        await session_page.wait_for_selector("[data-role=hs-done]:not([hidden])")
        note_id = await session_page.get_attribute("[data-role=hs-done]", "data-note-id")
        assert len(notes) == before + 1 and note_id in notes
        note = notes[note_id]
        assert {i for i, _ in note.associations["contacts"]} == {JANE.hubspot_contact_id}
        assert {i for i, _ in note.associations["tickets"]} == {ticket}
        assert (
            f"/player/{seeded.session.clarity_project_id}/{seeded.session.clarity_user_id}/{seeded.session.clarity_session_id}"
            in note.properties["hs_note_body"]
        )
        assert session_page.js_errors == []  # type: ignore[attr-defined]
    finally:
        await session_page.context.close()

    for theme in ("light", "dark"):
        for viewport, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
            shot = await new_page(browser, viewport, loop.app.url)
            try:
                await shot.emulate_media(color_scheme=theme, reduced_motion="reduce")
                await browser_sign_in(shot, "sam@example.com", PASSWORD)
                await shot.goto("/")
                await shot.locator("[data-testid=attention-case]").nth(1).wait_for()
                await shot.wait_for_load_state("networkidle")
                await assert_fits(shot)
                await assert_accessible(shot, f"home with Needs attention ({theme}, {width})")
                await shot.screenshot(path=str(SHOTS / f"attention-{theme}-{width}.png"), full_page=True)
                assert shot.js_errors == []  # type: ignore[attr-defined]
            finally:
                await shot.context.close()

    # Dwolla not answering the worker's reads: the events wait (the queue retries them), and the queue says so
    async with sessionmaker() as db:
        db.add(
            DwollaWebhookEvent(
                event_id="waiting-for-dwolla",
                topic="customer_transfer_failed",
                resource_id="f2a0c3e4-0000-4000-8000-000000000001",
                created=now - timedelta(minutes=2),
                received_at=now - timedelta(minutes=2),
            )
        )
        await db.commit()
    for theme, viewport, width in (("light", DESKTOP, "desktop"), ("dark", PHONE, "phone")):
        shot = await new_page(browser, viewport, loop.app.url)
        try:
            await shot.emulate_media(color_scheme=theme, reduced_motion="reduce")
            await browser_sign_in(shot, "sam@example.com", PASSWORD)
            await shot.goto("/")
            await shot.locator("[data-testid=attention-unhandled]").wait_for()
            await assert_fits(shot)
            await assert_accessible(shot, f"home, Dwolla events waiting ({theme}, {width})")
            await shot.screenshot(
                path=str(SHOTS / f"attention-dwolla-waiting-{theme}-{width}.png"), full_page=True
            )
        finally:
            await shot.context.close()

    # the agent opens the customer from the case: the search page with its "what happened" summary
    await page.locator("[data-testid=attention-case]").first.get_by_role("link", name="Open customer").click()
    await page.wait_for_url(lambda url: "q=jane%40acme.io" in url)
    await page.locator("[data-testid=summary]").wait_for()
    assert page.js_errors == []  # type: ignore[attr-defined]
    await page.context.close()

    # the admin page: the subscription at Dwolla, then Dwolla failing (one message, the rest stays)
    admin = await new_page(browser, DESKTOP, loop.app.url)
    try:
        await browser_sign_in(admin, "ada@example.com", PASSWORD)
        await admin.goto("/admin/webhooks")
        assert await admin.locator("[data-testid=subscription]").count() == 1
        assert "This app is subscribed" in await admin.inner_text("main")
        assert await admin.locator("[data-testid=events-received]").inner_text() == "3"
        assert await admin.locator("[data-testid=events-pending]").inner_text() == "1"
        await assert_accessible(admin, "admin webhooks")
        await admin.screenshot(path=str(SHOTS / "admin-webhooks-light-desktop.png"), full_page=True)
        loop.dwolla_app.state.sandbox.update(error_rate=1.0)
        for theme, viewport, width in (("light", DESKTOP, "desktop"), ("dark", PHONE, "phone")):
            await admin.set_viewport_size(viewport)
            await admin.emulate_media(color_scheme=theme)
            await admin.goto("/admin/webhooks")
            error = admin.locator("[data-testid=webhooks-error]")
            assert "Dwolla is not answering" in await error.inner_text()
            await assert_fits(admin)
            await assert_accessible(admin, f"admin webhooks, Dwolla down ({theme}, {width})")
            await admin.screenshot(
                path=str(SHOTS / f"admin-webhooks-dwolla-down-{theme}-{width}.png"), full_page=True
            )
    finally:
        loop.dwolla_app.state.sandbox.update(error_rate=0.0)
        await admin.context.close()
    assert transfer
