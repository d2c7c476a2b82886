"""Add to HubSpot in the browser: open a session, pick a ticket, write a comment, Add; the note is in
the HubSpot simulator on the contact and the ticket with the recording link; Add again is the same note.
The dialog passes axe and fits 390 px in both themes; HubSpot failing is said plainly in the dialog;
the search page's HubSpot panel shows the session attached to the ticket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supportlens.app import create_app
from supportlens_sandbox.hubspot import HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in
from tests.e2e.test_investigation import assert_accessible, assert_fits, wait_until
from tests.investigation.seed import seed_checkout_session
from tests.support.agents import PASSWORD, make_agent
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
SHOTS = Path("/work/shots/notes")


class Stack:
    def __init__(self, app: LiveServer, hubspot: Any) -> None:
        self.app, self.hubspot = app, hubspot


@pytest.fixture
def stack(settings_factory: Any, engine: Any) -> Iterator[Stack]:
    hubspot_app = create_hubspot_app(demo_world(), Knobs(rate_limits=False))
    with LiveServer(hubspot_app) as hs:
        settings = settings_factory(
            hubspot_base_url=hs.url, hubspot_token=HUBSPOT_TOKEN, base_url="https://supportlens.example.com"
        )
        with LiveServer(create_app(settings)) as server:
            yield Stack(server, hubspot_app)


async def open_page(browser: Any, base: str, viewport: dict[str, int], scheme: str) -> Any:
    context = await browser.new_context(viewport=viewport, base_url=base, color_scheme=scheme)
    context.set_default_timeout(15000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return page


async def open_dialog(page: Any, path: str) -> None:
    await page.goto(path)
    await page.wait_for_selector("[data-player][data-ready=true]")
    await page.click("[data-action=hs-open]")
    await page.wait_for_selector("[data-role=hs-dialog][open]")


async def test_add_to_hubspot_from_a_session_and_again(browser: Any, stack: Stack, sessionmaker: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email)
    await make_agent(sessionmaker, "agent", email="notes@example.com")
    notes = stack.hubspot.state.data.objects["notes"]
    page = await open_page(browser, stack.app.url, DESKTOP, "light")
    try:
        await browser_sign_in(page, "notes@example.com", PASSWORD)
        await open_dialog(page, f"/sessions/{seeded.id}")
        ticket = JANE.ticket_ids[0]
        await page.wait_for_selector(f"[data-role=hs-ticket-list] input[value='{ticket}']")
        assert await page.is_checked("input[name=scope][value=session]")
        await page.check(f"[data-role=hs-ticket-list] input[value='{ticket}']")
        await page.fill("[data-role=hs-dialog] textarea[name=comment]", "Customer says Pay did nothing <b>.")
        before = len(notes)
        await page.click("[data-role=hs-submit]")
        await page.wait_for_selector("[data-role=hs-done]:not([hidden])")
        assert "Added to HubSpot." in await page.inner_text("[data-role=hs-done]")
        note_id = await page.get_attribute("[data-role=hs-done]", "data-note-id")
        assert len(notes) == before + 1 and note_id in notes
        note = notes[note_id]
        assert {i for i, _ in note.associations["contacts"]} == {JANE.hubspot_contact_id}
        assert {i for i, _ in note.associations["tickets"]} == {ticket}
        assert (
            'href="https://clarity.microsoft.com/player/proj1/user1/s1abc"' in note.properties["hs_note_body"]
        )
        href = await page.get_attribute("[data-role=hs-done-link]", "href")
        assert href and href.endswith(f"/record/0-5/{ticket}")
        await wait_until(
            page, "() => document.querySelector('[data-role=hs-made]').textContent.includes('1 note')"
        )
        await page.screenshot(path=str(SHOTS / "dialog-added-1440-light.png"))

        await page.click("[data-role=hs-submit]")  # again: the same note
        await wait_until(
            page, "() => document.querySelector('[data-role=hs-done-text]').textContent.includes('Already')"
        )
        assert await page.get_attribute("[data-role=hs-done]", "data-note-id") == note_id
        assert len(notes) == before + 1
        assert page.js_errors == []
    finally:
        await page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_dialog_at_both_widths_and_the_ticket_on_the_search_page(
    browser: Any, stack: Stack, sessionmaker: Any, scheme: str
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email)
    email = f"notes-{scheme}@example.com"
    await make_agent(sessionmaker, "agent", email=email)
    for name, viewport in (("1440", DESKTOP), ("390", PHONE)):
        page = await open_page(browser, stack.app.url, viewport, scheme)
        try:
            await browser_sign_in(page, email, PASSWORD)
            await open_dialog(page, f"/sessions/{seeded.id}?t=300600")  # a moment: the player's position
            await page.wait_for_selector("[data-role=hs-ticket-list] input[name=ticket]")
            assert await page.is_checked("input[name=scope][value=moment]")
            assert await page.inner_text("[data-role=hs-at]") == "5:00"
            await page.check(f"[data-role=hs-ticket-list] input[value='{JANE.ticket_ids[0]}']")
            await page.fill("[data-role=hs-dialog] textarea[name=comment]", "The error right after Pay.")
            await page.screenshot(path=str(SHOTS / f"dialog-{name}-{scheme}.png"))
            await assert_fits(page)
            await assert_accessible(page, f"dialog {name} {scheme}")
            await page.click("[data-role=hs-submit]")
            await page.wait_for_selector("[data-role=hs-done]:not([hidden])")
            assert page.js_errors == []

            await page.goto("/?q=jane@acme.io")
            await page.wait_for_selector("[data-testid=ticket-sessions]")
            links = page.locator("[data-testid=ticket-sessions] a")
            assert await links.first.get_attribute("href") == f"/sessions/{seeded.id}?t=300600"
            await page.locator("[data-testid=ticket-sessions]").first.scroll_into_view_if_needed()
            await page.screenshot(path=str(SHOTS / f"search-ticket-sessions-{name}-{scheme}.png"))
            await assert_fits(page)
        finally:
            await page.context.close()


async def test_hubspot_down_is_said_in_the_dialog(browser: Any, stack: Stack, sessionmaker: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email)
    await make_agent(sessionmaker, "agent", email="notes-down@example.com")
    page = await open_page(browser, stack.app.url, PHONE, "dark")
    try:
        await browser_sign_in(page, "notes-down@example.com", PASSWORD)
        stack.hubspot.state.sandbox.update(error_rate=1.0, error_status=503)
        await open_dialog(page, f"/sessions/{seeded.id}")
        await wait_until(
            page,
            "() => document.querySelector('[data-role=hs-loading]').textContent.includes('could not')",
            30,
        )
        assert "HubSpot is not answering" in await page.inner_text("[data-role=hs-loading]")
        await page.click("[data-role=hs-submit]")
        await page.wait_for_selector("[data-role=hs-error]:not([hidden])", timeout=30000)
        assert "Nothing was saved" in await page.inner_text("[data-role=hs-error]")
        await page.screenshot(path=str(SHOTS / "dialog-hubspot-down-390-dark.png"))
        await assert_accessible(page, "dialog with HubSpot down")
        assert stack.hubspot.state.data.objects["notes"] == {} or all(
            "s1abc" not in n.properties.get("hs_note_body", "")
            for n in stack.hubspot.state.data.objects["notes"].values()
        )
    finally:
        stack.hubspot.state.sandbox.update(error_rate=0.0)
        await page.context.close()
