"""Our HubSpot client writes session notes: create (escaped HTML), update, associate, a contact's
tickets, the portal id; a missing scope and a deleted ticket become clear typed errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from supportlens.config import Settings
from supportlens.integrations.errors import UpstreamBadResponse, UpstreamForbidden, UpstreamNotFound
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens.integrations.hubspot.notes import NoteContent, NoteLink
from supportlens_sandbox.hubspot import (
    HUBSPOT_PORTAL_ID,
    HUBSPOT_READONLY_TOKEN,
    HUBSPOT_TOKEN,
    create_hubspot_app,
)
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
AT = datetime(2026, 11, 26, 10, 41, 7, 123000, tzinfo=UTC)
STORY = NoteContent(
    title="Session of Nov 26, 10:38–10:45 UTC (7 min)",
    lines=("Pages: /cart → /pay", "Error on /pay: TypeError", "Rage click on button#pay"),
    comment="Customer says the button did nothing.",
    links=(
        NoteLink("Clarity recording", "https://clarity.microsoft.com/player/p1/u1/s1"),
        NoteLink("SupportLens", "https://supportlens.example.com/sessions/42?t=61000"),
    ),
)


@pytest.fixture(scope="module")
def hubspot_sim() -> Iterator[tuple[LiveServer, object]]:
    app = create_hubspot_app(demo_world(), Knobs(rate_limits=False))  # its own world: tickets get archived
    with LiveServer(app) as live:
        yield live, app


@pytest.fixture
def make_client(settings_factory, hubspot_sim) -> Callable[..., HubSpotClient]:
    """A client of the module's simulator (each test closes its own)."""

    def make(token: str = HUBSPOT_TOKEN) -> HubSpotClient:
        settings: Settings = settings_factory(hubspot_base_url=hubspot_sim[0].url, hubspot_token=token)
        return HubSpotClient(settings)

    return make


async def test_create_update_and_read_a_note_on_a_contact_and_ticket(make_client) -> None:
    hubspot = make_client()
    try:
        [ticket, *_] = await hubspot.list_contact_tickets(JANE.hubspot_contact_id)
        assert ticket.id in JANE.ticket_ids and ticket.subject
        note = await hubspot.create_note(JANE.hubspot_contact_id, STORY, at=AT, ticket_id=ticket.id)
        assert note.id and note.timestamp == AT
        assert note.body_html == STORY.to_html()
        assert (note.contact_ids, note.ticket_ids) == ([JANE.hubspot_contact_id], [ticket.id])
        read = await hubspot.get_note(note.id)
        assert (read.contact_ids, read.ticket_ids) == ([JANE.hubspot_contact_id], [ticket.id])
        assert 'href="https://clarity.microsoft.com/player/p1/u1/s1"' in (read.body_html or "")

        edited = NoteContent(title=STORY.title, lines=STORY.lines, comment="Retried with another card.")
        updated = await hubspot.update_note(note.id, edited)
        assert "Retried with another card." in (updated.body_html or "")
        assert updated.updated_at and read.updated_at and updated.updated_at >= read.updated_at
        assert (await hubspot.get_note(note.id)).body_html == edited.to_html()
    finally:
        await hubspot.aclose()


async def test_associate_an_existing_note_and_read_the_portal(make_client) -> None:
    hubspot = make_client()
    try:
        note = await hubspot.create_note(JANE.hubspot_contact_id, STORY, at=AT)
        assert note.ticket_ids == []
        ticket = JANE.ticket_ids[0]
        await hubspot.associate_note(note.id, ticket_id=ticket)
        await hubspot.associate_note(
            note.id, ticket_id=ticket, contact_id=JANE.hubspot_contact_id
        )  # again: no-op
        read = await hubspot.get_note(note.id)
        assert (read.contact_ids, read.ticket_ids) == ([JANE.hubspot_contact_id], [ticket])
        account = await hubspot.account()
        assert account.portal_id == HUBSPOT_PORTAL_ID
        assert account.record_url("contacts", "101") == (
            f"https://app.hubspot.com/contacts/{HUBSPOT_PORTAL_ID}/record/0-1/101"
        )
        assert await hubspot.account() is account  # read once
    finally:
        await hubspot.aclose()


async def test_attacker_text_is_escaped_in_the_note_body(make_client) -> None:
    hubspot = make_client()
    hostile = NoteContent(
        title='<img src=x onerror="alert(1)">',
        lines=("</li><script>steal()</script>", 'a "quoted" & <b>bold</b> page'),
        comment="<a href='javascript:alert(1)'>click</a>",
        links=(NoteLink('"><script>x</script>', 'https://shop.example/pay?q=<script>&x="y"'),),
    )
    try:
        note = await hubspot.create_note(JANE.hubspot_contact_id, hostile, at=AT)
        body = (await hubspot.get_note(note.id)).body_html or ""
        for live in ("<script", "<img", "<b>", "<a href='javascript", 'onerror="'):
            assert live not in body, live
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
        assert 'href="https://shop.example/pay?q=&lt;script&gt;&amp;x=&quot;y&quot;"' in body
    finally:
        await hubspot.aclose()


async def test_a_token_without_write_scope_is_a_clear_forbidden(make_client) -> None:
    reader = make_client(HUBSPOT_READONLY_TOKEN)
    try:
        assert await reader.list_contact_tickets(JANE.hubspot_contact_id)  # reading works
        with pytest.raises(UpstreamForbidden) as caught:
            await reader.create_note(JANE.hubspot_contact_id, STORY, at=AT)
        assert caught.value.code == "MISSING_SCOPES" and caught.value.status == 403
        assert "lacks a scope" in str(caught.value)
    finally:
        await reader.aclose()


async def test_a_deleted_ticket_is_a_clear_not_found_and_no_note_is_made(make_client, hubspot_sim) -> None:
    hubspot = make_client()
    customer = next(c for c in WORLD.hubspot_customers if len(c.ticket_ids) >= 1 and c is not JANE)
    ticket = customer.ticket_ids[0]
    app = hubspot_sim[1]
    try:
        assert app.state.data.archive("tickets", ticket)
        notes_before = len(app.state.data.objects["notes"])
        with pytest.raises(UpstreamNotFound) as caught:
            await hubspot.create_note(customer.hubspot_contact_id, STORY, at=AT, ticket_id=ticket)
        assert caught.value.status == 404 and caught.value.code == "OBJECT_NOT_FOUND"
        assert "no longer exists" in str(caught.value)
        assert len(app.state.data.objects["notes"]) == notes_before
        assert ticket not in [t.id for t in await hubspot.list_contact_tickets(customer.hubspot_contact_id)]
        note = await hubspot.create_note(customer.hubspot_contact_id, STORY, at=AT)
        with pytest.raises(UpstreamNotFound):  # linking an existing note to the deleted ticket
            await hubspot.associate_note(note.id, ticket_id=ticket)
        assert (await hubspot.get_note(note.id)).ticket_ids == []
        with pytest.raises(UpstreamNotFound):
            await hubspot.update_note("61999999999", STORY)
        with pytest.raises(UpstreamBadResponse):  # never sent: not a HubSpot id
            await hubspot.create_note("../../owners", STORY, at=AT)
    finally:
        await hubspot.aclose()
