"""The official HubSpot SDK (hubspot-api-client) writes notes and associations to the HubSpot simulator,
and reads its documented error bodies: 403 MISSING_SCOPES and 404 for an archived ticket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as V4ApiException
from hubspot.crm.associations.v4 import AssociationSpec as V4Spec
from hubspot.crm.associations.v4 import (
    BatchResponsePublicDefaultAssociation,
    LabelsBetweenObjectPair,
)
from hubspot.crm.objects.notes import (
    ApiException,
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObject,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from supportlens_sandbox.hubspot import HUBSPOT_READONLY_TOKEN, HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")
NOTE_TO_CONTACT, NOTE_TO_TICKET, TICKET_TO_NOTE, CONTACT_TO_NOTE = 202, 228, 227, 201


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # A world of its own: these tests write notes and archive a ticket.
    with LiveServer(create_hubspot_app(demo_world(), Knobs(rate_limits=False))) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> HubSpot:
    return HubSpot(access_token=HUBSPOT_TOKEN, host=server.url)


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def to(object_id: str, type_id: int) -> PublicAssociationsForObject:
    return PublicAssociationsForObject(
        to=PublicObjectId(id=object_id),
        types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)],
    )


def new_note(body: str, *associations: PublicAssociationsForObject) -> SimplePublicObjectInputForCreate:
    return SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2026-11-26T10:41:07.123Z", "hs_note_body": body},
        associations=list(associations),
    )


async def test_create_a_note_with_contact_and_ticket_then_read_and_update_it(sdk: HubSpot) -> None:
    notes = sdk.crm.objects.notes.basic_api
    ticket = JANE.ticket_ids[0]
    body = "<p>Jane tried to pay <strong>3 times</strong>.</p>"
    created = await call(
        notes.create, new_note(body, to(JANE.hubspot_contact_id, NOTE_TO_CONTACT), to(ticket, NOTE_TO_TICKET))
    )
    assert isinstance(created, SimplePublicObject)
    assert created.properties["hs_note_body"] == body
    assert created.properties["hs_timestamp"] == "2026-11-26T10:41:07.123Z"
    assert created.properties["hs_object_id"] == created.id and created.archived is False

    read = await call(
        notes.get_by_id, created.id, properties=["hs_note_body"], associations=["contacts", "tickets"]
    )
    assert read.properties["hs_note_body"] == body
    assert [a.id for a in read.associations["contacts"].results] == [JANE.hubspot_contact_id]
    assert [a.id for a in read.associations["tickets"].results] == [ticket]
    assert read.associations["tickets"].results[0].type == "note_to_ticket"

    updated = await call(
        notes.update, created.id, SimplePublicObjectInput(properties={"hs_note_body": "<p>edited</p>"})
    )
    assert updated.properties["hs_note_body"] == "<p>edited</p>"
    assert updated.updated_at >= created.updated_at

    # The contact and the ticket see the note from their side, with HubSpot's reverse type ids.
    v4 = sdk.crm.associations.v4.basic_api
    from_contact = await call(v4.get_page, "contacts", JANE.hubspot_contact_id, "notes")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in from_contact.results] == [
        (created.id, CONTACT_TO_NOTE)
    ]
    from_ticket = await call(v4.get_page, "tickets", ticket, "notes")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in from_ticket.results] == [
        (created.id, TICKET_TO_NOTE)
    ]


async def test_v4_default_and_labelled_associations(sdk: HubSpot) -> None:
    note = await call(sdk.crm.objects.notes.basic_api.create, new_note("<p>later</p>"))
    v4 = sdk.crm.associations.v4.basic_api
    default = await call(v4.create_default, "note", note.id, "contact", JANE.hubspot_contact_id)
    assert isinstance(default, BatchResponsePublicDefaultAssociation) and default.status == "COMPLETE"
    pairs = {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in default.results}
    assert pairs == {
        (note.id, JANE.hubspot_contact_id, NOTE_TO_CONTACT),
        (JANE.hubspot_contact_id, note.id, CONTACT_TO_NOTE),
    }
    ticket = JANE.ticket_ids[0]
    labelled = await call(
        v4.create,
        "notes",
        note.id,
        "tickets",
        ticket,
        [V4Spec(association_category="HUBSPOT_DEFINED", association_type_id=NOTE_TO_TICKET)],
    )
    assert isinstance(labelled, LabelsBetweenObjectPair)
    assert (labelled.from_object_type_id, labelled.to_object_type_id, labelled.to_object_id) == (
        "0-46",
        "0-5",
        ticket,
    )
    page = await call(v4.get_page, "notes", note.id, "tickets")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in page.results] == [
        (ticket, NOTE_TO_TICKET)
    ]
    with pytest.raises(V4ApiException) as wrong_type:  # 202 is note→contact, not note→ticket
        await call(
            v4.create, "notes", note.id, "tickets", ticket,
            [V4Spec(association_category="HUBSPOT_DEFINED", association_type_id=NOTE_TO_CONTACT)],
        )  # fmt: skip
    assert wrong_type.value.status == 400


async def test_a_token_without_write_scopes_gets_missing_scopes(server: LiveServer) -> None:
    reader = HubSpot(access_token=HUBSPOT_READONLY_TOKEN, host=server.url)
    contact = await call(reader.crm.contacts.basic_api.get_by_id, JANE.hubspot_contact_id)
    assert contact.id == JANE.hubspot_contact_id  # reading is allowed
    with pytest.raises(ApiException) as caught:
        await call(
            reader.crm.objects.notes.basic_api.create, new_note("<p>x</p>", to(JANE.hubspot_contact_id, 202))
        )
    assert caught.value.status == 403
    body = json.loads(caught.value.body)
    assert body["category"] == "MISSING_SCOPES" and body["status"] == "error"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}


async def test_an_archived_ticket_is_404_and_nothing_is_created(sdk: HubSpot, server: LiveServer) -> None:
    customer = next(c for c in WORLD.hubspot_customers if c.ticket_ids and c is not JANE)
    ticket = customer.ticket_ids[0]
    await call(sdk.crm.tickets.basic_api.archive, ticket)
    from hubspot.crm.tickets import ApiException as TicketsApiException

    with pytest.raises(TicketsApiException) as gone:
        await call(sdk.crm.tickets.basic_api.get_by_id, ticket)
    assert gone.value.status == 404 and json.loads(gone.value.body)["category"] == "OBJECT_NOT_FOUND"
    before = await call(
        sdk.crm.associations.v4.basic_api.get_page, "contacts", customer.hubspot_contact_id, "notes"
    )
    with pytest.raises(ApiException) as caught:
        await call(
            sdk.crm.objects.notes.basic_api.create,
            new_note(
                "<p>x</p>", to(customer.hubspot_contact_id, NOTE_TO_CONTACT), to(ticket, NOTE_TO_TICKET)
            ),
        )
    assert caught.value.status == 404 and json.loads(caught.value.body)["category"] == "OBJECT_NOT_FOUND"
    after = await call(
        sdk.crm.associations.v4.basic_api.get_page, "contacts", customer.hubspot_contact_id, "notes"
    )
    assert after.results == before.results  # no half-made note on the contact
    tickets = await call(
        sdk.crm.associations.v4.basic_api.get_page, "contacts", customer.hubspot_contact_id, "tickets"
    )
    assert ticket not in [r.to_object_id for r in tickets.results]


async def test_bad_note_bodies_are_hubspot_400s(sdk: HubSpot) -> None:
    notes = sdk.crm.objects.notes.basic_api
    for properties in (
        {"hs_note_body": "<p>no timestamp</p>"},
        {"hs_timestamp": "yesterday", "hs_note_body": "x"},
        {"hs_timestamp": "1764153667123", "hs_note_body": "x" * 65_537},
        {"hs_timestamp": "1764153667123", "not_a_property": "x"},
    ):
        with pytest.raises(ApiException) as caught:
            await call(notes.create, SimplePublicObjectInputForCreate(properties=properties, associations=[]))
        assert caught.value.status == 400, properties
        assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"
    millis = await call(
        notes.create,
        SimplePublicObjectInputForCreate(properties={"hs_timestamp": "1764153667123"}, associations=[]),
    )
    assert millis.properties["hs_timestamp"] == "2025-11-26T10:41:07.123Z"
