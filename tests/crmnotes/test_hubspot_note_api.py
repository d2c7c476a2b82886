"""Add to HubSpot through the real routes, PostgreSQL and the HubSpot simulator: the note, its
associations and body; the same session, ticket and moment again is the same note; an edited comment
updates it; refusals (missing scope, deleted ticket) store nothing; a retry after our store failed finds
the note HubSpot made instead of making a second; roles, bad input, audit, erasure, the search page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select, text

from supportlens.app import create_app
from supportlens.audit.models import AuditEntry
from supportlens.crmnotes.models import HubSpotNoteLink
from supportlens.privacy.erasure import erase_customer
from supportlens_sandbox.hubspot import HUBSPOT_READONLY_TOKEN, HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.investigation.seed import seed_checkout_session
from tests.support.agents import make_agent, sign_in
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
BASE = "https://supportlens.example.com"


class ArchiveTicketOnNoteCreate:
    """The simulator, with a ticket deleted in HubSpot just as the note is being made (armed)."""

    def __init__(self, app: Any) -> None:
        self.app, self.ticket = app, None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.ticket and scope["type"] == "http" and scope["method"] == "POST":
            if scope["path"] == "/crm/v3/objects/notes":
                self.app.state.data.archive("tickets", self.ticket)
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[LiveServer, Any, ArchiveTicketOnNoteCreate]]:
    app = create_hubspot_app(demo_world(), Knobs(rate_limits=False))
    hook = ArchiveTicketOnNoteCreate(app)
    with LiveServer(hook) as live:
        yield live, app, hook


@pytest.fixture
def settings(settings_factory, sim):
    return settings_factory(hubspot_base_url=sim[0].url, hubspot_token=HUBSPOT_TOKEN, base_url=BASE)


@asynccontextmanager
async def agent_client(settings: Any, sessionmaker: Any, role: str = "agent") -> AsyncIterator[Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        agent = await make_agent(sessionmaker, role)
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50003))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            csrf = await sign_in(c, agent.email)
            c.headers["X-CSRF-Token"] = csrf
            yield c


def notes_of(sim_app: Any) -> dict[str, Any]:
    return dict(sim_app.state.data.objects["notes"])


def customer_with_tickets(n: int, skip: int = 0) -> Any:
    found = [c for c in WORLD.hubspot_customers if len(c.ticket_ids) >= 1 and c is not JANE]
    return found[skip + n]


async def link_count(sessionmaker: Any) -> int:
    async with sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(HubSpotNoteLink)) or 0)


async def test_add_with_ticket_and_comment_again_and_edit(settings, sessionmaker, sim) -> None:
    _, sim_app, _ = sim
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email)
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with agent_client(settings, sessionmaker) as c:
        options = (await c.get(url)).json()
        assert options["contactId"] == JANE.hubspot_contact_id and options["notes"] == []
        ticket = options["tickets"][0]
        assert ticket["id"] in JANE.ticket_ids and ticket["subject"] and ticket["status"]

        before = len(notes_of(sim_app))
        body = {"ticketId": ticket["id"], "comment": "Customer says <b>Pay</b> did nothing."}
        r = await c.post(url, json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["contactId"] == JANE.hubspot_contact_id and made["ticketId"] == ticket["id"]
        assert made["url"].endswith(f"/record/0-5/{ticket['id']}")
        note = sim_app.state.data.objects["notes"][made["noteId"]]
        assert len(notes_of(sim_app)) == before + 1
        assert {i for i, _ in note.associations["contacts"]} == {JANE.hubspot_contact_id}
        assert {i for i, _ in note.associations["tickets"]} == {ticket["id"]}
        html = note.properties["hs_note_body"]
        assert 'href="https://clarity.microsoft.com/player/proj1/user1/s1abc"' in html
        assert f'href="{BASE}/sessions/{seeded.id}#hubspot-note-' in html
        assert "Pages (3): / → /products → /pay" in html
        assert "TypeError: Cannot read properties of undefined" in html
        assert "1 rage click (most on button#later, 1×)" in html
        assert "&lt;b&gt;Pay&lt;/b&gt;" in html and "<b>" not in html

        again = await c.post(url, json=body)
        assert again.status_code == 200 and again.json() == made
        assert len(notes_of(sim_app)) == before + 1

        edited = await c.post(url, json={**body, "comment": "Retried with another card: works."})
        assert edited.status_code == 200 and edited.json()["noteId"] == made["noteId"]
        assert "Retried with another card: works." in note.properties["hs_note_body"]
        assert len(notes_of(sim_app)) == before + 1
        assert (await c.get(url)).json()["notes"][0]["noteId"] == made["noteId"]

    async with sessionmaker() as db:
        actions = (await db.scalars(select(AuditEntry.action))).all()
    assert "hubspot_note_created" in actions and "hubspot_note_updated" in actions
    assert "hubspot_note_unchanged" in actions
    assert "hubspot_tickets_viewed" in actions
    assert await link_count(sessionmaker) == 1


async def test_moments_and_no_ticket_are_their_own_notes(settings, sessionmaker, sim) -> None:
    _, sim_app, _ = sim
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s2m")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with agent_client(settings, sessionmaker) as c:
        whole = await c.post(url, json={})
        moment = await c.post(url, json={"atMs": 300_600})
        assert (whole.status_code, moment.status_code) == (201, 201)
        assert whole.json()["noteId"] != moment.json()["noteId"] and whole.json()["ticketId"] is None
        note = sim_app.state.data.objects["notes"][moment.json()["noteId"]]
        assert "tickets" not in note.associations or not note.associations["tickets"]
        html = note.properties["hs_note_body"]
        assert "moment 5:00" in html and "At 5:00: JavaScript error on /pay" in html
        assert f"/sessions/{seeded.id}?t=300600#hubspot-note-" in html
        assert (await c.post(url, json={"atMs": 300_600})).json() == moment.json()


async def test_bad_input_roles_and_unknown_tickets(settings, sessionmaker, sim) -> None:
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s3b")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with agent_client(settings, sessionmaker, "viewer") as viewer:
        assert (await viewer.post(url, json={})).status_code == 403
        assert (await viewer.get(url)).status_code == 403
    async with agent_client(settings, sessionmaker) as c:
        cases = [
            ({"ticketId": "12<script>"}, "ticketId"),
            ({"atMs": -1}, "atMs"),
            ({"atMs": 400_000}, "atMs"),  # the session lasts 6 minutes
            ({"comment": "x" * 2001}, "comment"),
            ({"noteBody": "<p>mine</p>"}, "noteBody"),
        ]
        for body, field in cases:
            r = await c.post(url, json=body)
            assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
        other = customer_with_tickets(0)
        r = await c.post(url, json={"ticketId": other.ticket_ids[0]})  # someone else's ticket
        assert r.status_code == 404 and r.json()["field"] == "ticketId"
        unlinked = await seed_checkout_session(sessionmaker, clarity_session_id="s3u", mapped=False)
        r = await c.post(f"/api/clarity/sessions/{unlinked.id}/hubspot-note", json={})
        assert r.status_code == 409 and "not linked" in r.json()["detail"]
    assert await link_count(sessionmaker) == 0


async def test_a_missing_scope_is_a_clear_502_and_nothing_is_stored(
    settings_factory, sessionmaker, sim
) -> None:
    live, sim_app, _ = sim
    readonly = settings_factory(
        hubspot_base_url=live.url, hubspot_token=HUBSPOT_READONLY_TOKEN, base_url=BASE
    )
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s4s")
    before = len(notes_of(sim_app))
    async with agent_client(readonly, sessionmaker) as c:
        r = await c.post(f"/api/clarity/sessions/{seeded.id}/hubspot-note", json={"comment": "hi"})
    assert r.status_code == 502, r.text
    assert "lacks a scope" in r.json()["detail"] and "Nothing was saved" in r.json()["detail"]
    assert len(notes_of(sim_app)) == before and await link_count(sessionmaker) == 0


async def test_a_ticket_deleted_while_adding_is_a_404_and_nothing_is_stored(
    settings, sessionmaker, sim
) -> None:
    _, sim_app, hook = sim
    customer = customer_with_tickets(1)
    seeded = await seed_checkout_session(sessionmaker, email=customer.email, clarity_session_id="s5d")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    before = len(notes_of(sim_app))
    async with agent_client(settings, sessionmaker) as c:
        hook.ticket = customer.ticket_ids[0]
        try:
            r = await c.post(url, json={"ticketId": customer.ticket_ids[0]})
        finally:
            hook.ticket = None
        assert r.status_code == 404 and r.json()["field"] == "ticketId", r.text
        assert "no longer exists in HubSpot" in r.json()["detail"]
        assert len(notes_of(sim_app)) == before and await link_count(sessionmaker) == 0
        again = await c.post(url, json={"ticketId": customer.ticket_ids[0]})  # now gone from the list
        assert again.status_code == 404 and again.json()["field"] == "ticketId"
    assert len(notes_of(sim_app)) == before and await link_count(sessionmaker) == 0


async def test_a_retry_after_our_store_failed_finds_the_note_hubspot_made(
    settings, sessionmaker, sim
) -> None:
    _, sim_app, _ = sim
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s6r")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with sessionmaker() as db:  # PostgreSQL refuses to record the note id (as a failed commit)
        await db.execute(
            text(
                "CREATE FUNCTION refuse_note_id() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.note_id IS NOT NULL THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$"
            )
        )
        await db.execute(
            text(
                "CREATE TRIGGER refuse BEFORE UPDATE ON hubspot_note_links FOR EACH ROW "
                "EXECUTE FUNCTION refuse_note_id()"
            )
        )
        await db.commit()
    before = len(notes_of(sim_app))
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            agent = await make_agent(sessionmaker, "agent")
            transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50004), raise_app_exceptions=False)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
                c.headers["X-CSRF-Token"] = await sign_in(c, agent.email)
                failed = await c.post(url, json={"comment": "first try"})
                assert failed.status_code == 500
                assert len(notes_of(sim_app)) == before + 1  # HubSpot made it; we could not store its id
                async with sessionmaker() as db:
                    pending = (await db.scalars(select(HubSpotNoteLink))).one()
                    assert pending.note_id is None
                    await db.execute(text("DROP TRIGGER refuse ON hubspot_note_links"))
                    await db.commit()
                retried = await c.post(url, json={"comment": "second try"})
                assert retried.status_code == 201, retried.text
                assert len(notes_of(sim_app)) == before + 1  # found again, not made twice
                note = sim_app.state.data.objects["notes"][retried.json()["noteId"]]
                assert pending.nonce in note.properties["hs_note_body"]
                assert "second try" in note.properties["hs_note_body"]  # the edited comment was applied
                assert (await c.post(url, json={"comment": "second try"})).status_code == 200
    finally:
        async with sessionmaker() as db:
            await db.execute(text("DROP TRIGGER IF EXISTS refuse ON hubspot_note_links"))
            await db.execute(text("DROP FUNCTION IF EXISTS refuse_note_id()"))
            await db.commit()


async def test_the_same_note_added_twice_at_once_is_made_once(settings, sessionmaker, sim) -> None:
    _, sim_app, _ = sim
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s7c")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    before = len(notes_of(sim_app))
    async with agent_client(settings, sessionmaker) as c:
        answers = await asyncio.gather(*(c.post(url, json={"atMs": 1000}) for _ in range(4)))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(201) == 1 and set(codes) <= {200, 201, 409}, codes
        assert len(notes_of(sim_app)) == before + 1
        again = await c.post(url, json={"atMs": 1000})
        assert again.status_code == 200
    assert await link_count(sessionmaker) == 1


async def test_search_shows_attached_sessions_and_erasure_removes_the_links(
    settings, sessionmaker, sim
) -> None:
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s8e")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with agent_client(settings, sessionmaker) as c:
        ticket = JANE.ticket_ids[0]
        made = (await c.post(url, json={"ticketId": ticket, "atMs": 112_000})).json()
        panel = await c.get("/search/panel/hubspot?q=jane@acme.io", headers={"Accept": "text/html"})
        assert panel.status_code == 200
        assert f'href="/sessions/{seeded.id}?t=112000"' in panel.text and "Sessions attached" in panel.text
    async with sessionmaker() as db:
        receipt = await erase_customer(db, JANE.email, settings)
    assert receipt.counts["hubspot_note_links"] == 1 and await link_count(sessionmaker) == 0
    assert made["noteId"] in sim[1].state.data.objects["notes"]  # HubSpot's record: HubSpot's process


async def test_a_note_being_added_by_another_request_is_a_409(settings, sessionmaker, sim) -> None:
    from supportlens.crmnotes.models import HubSpotNoteLink as Link

    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s9l")
    async with sessionmaker() as db:
        db.add(Link(session_id=seeded.id, contact_id=JANE.hubspot_contact_id, customer_ref="cust_x",
                    nonce="0" * 32, comment_sha256="0" * 64))  # fmt: skip
        await db.commit()
    async with sessionmaker() as holder, agent_client(settings, sessionmaker) as c:
        await holder.execute(text("SELECT 1 FROM hubspot_note_links FOR UPDATE"))  # another request's lock
        r = await c.post(f"/api/clarity/sessions/{seeded.id}/hubspot-note", json={})
        assert r.status_code == 409 and "try again" in r.json()["detail"], r.text
        await holder.rollback()
        r = await c.post(f"/api/clarity/sessions/{seeded.id}/hubspot-note", json={})
        assert r.status_code == 201  # the left-over pending row: no note has its nonce, so one is made
    async with sessionmaker() as db:
        assert (await db.scalars(select(Link.note_id))).one() == r.json()["noteId"]


async def test_a_note_deleted_in_hubspot_is_made_again_when_the_comment_changes(
    settings, sessionmaker, sim
) -> None:
    _, sim_app, _ = sim
    seeded = await seed_checkout_session(sessionmaker, email=JANE.email, clarity_session_id="s10d")
    url = f"/api/clarity/sessions/{seeded.id}/hubspot-note"
    async with agent_client(settings, sessionmaker) as c:
        first = (await c.post(url, json={"comment": "one"})).json()
        assert sim_app.state.data.archive("notes", first["noteId"])
        again = await c.post(url, json={"comment": "two"})
        assert again.status_code == 201 and again.json()["noteId"] != first["noteId"], again.text
        assert "two" in sim_app.state.data.objects["notes"][again.json()["noteId"]].properties["hs_note_body"]
        assert (await c.post(url, json={"comment": "two"})).json() == again.json()
