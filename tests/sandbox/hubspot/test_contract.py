"""The official HubSpot SDK (hubspot-api-client) reads the HubSpot simulator's answers into its models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import CollectionResponseMultiAssociatedObjectWithLabelForwardPaging
from hubspot.crm.contacts import (
    ApiException,
    CollectionResponseWithTotalSimplePublicObjectForwardPaging,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectWithAssociations,
)
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

from supportlens_sandbox.hubspot import HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.support.live import LiveServer

WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # The contract tests fire several searches in a row; the limit has its own tests.
    with LiveServer(create_hubspot_app(WORLD, Knobs(rate_limits=False))) as live:
        yield live


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> HubSpot:
    return HubSpot(access_token=HUBSPOT_TOKEN, host=server.url)


def email_eq(email: str) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="email", operator="EQ", value=email)])],
        properties=[
            "email",
            "firstname",
            "lastname",
            "phone",
            "dwolla_id",
            "lifecyclestage",
            "hubspot_owner_id",
        ],
        limit=10,
    )


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_search_by_email_eq(sdk: HubSpot) -> None:
    page = await call(sdk.crm.contacts.search_api.do_search, email_eq("JANE@acme.io"))
    assert isinstance(page, CollectionResponseWithTotalSimplePublicObjectForwardPaging)
    assert page.total == 1
    contact = page.results[0]
    assert contact.id == JANE.hubspot_contact_id
    assert contact.properties["email"] == "jane@acme.io"
    assert contact.properties["dwolla_id"] == JANE.dwolla_id
    assert contact.properties["hubspot_owner_id"] == JANE.owner.id  # type: ignore[union-attr]
    assert contact.properties["hs_object_id"] == JANE.hubspot_contact_id  # always returned by search
    assert contact.created_at.tzinfo is not None and contact.archived is False
    assert page.paging is None


async def test_search_by_query_text_name_and_phone(sdk: HubSpot) -> None:
    by_name = await call(sdk.crm.contacts.search_api.do_search, PublicObjectSearchRequest(query="Robert Ch"))
    assert [r.properties["email"] for r in by_name.results] == ["robert@initech.com"]
    by_phone = await call(
        sdk.crm.contacts.search_api.do_search, PublicObjectSearchRequest(query="(415) 555-0101")
    )
    assert [r.id for r in by_phone.results] == [JANE.hubspot_contact_id]
    by_company = await call(sdk.crm.contacts.search_api.do_search, PublicObjectSearchRequest(query="Acme"))
    assert {r.properties["email"] for r in by_company.results} == {"jane@acme.io", "john.smith@acme.io"}


async def test_paging_walks_every_contact_once(sdk: HubSpot) -> None:
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        request = PublicObjectSearchRequest(limit=100, after=after, sorts=["hs_object_id"])
        page = await call(sdk.crm.contacts.search_api.do_search, request)
        pages += 1
        seen.extend(r.id for r in page.results)
        assert page.total == len(WORLD.hubspot_customers)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link == f"?after={after}"
    assert pages == 3
    assert len(seen) == len(set(seen)) == len(WORLD.hubspot_customers)
    assert seen == sorted(seen, key=int)


async def test_get_by_id_with_associations(sdk: HubSpot) -> None:
    contact = await call(
        sdk.crm.contacts.basic_api.get_by_id,
        JANE.hubspot_contact_id,
        properties=["email", "dwolla_id", "onboarding_step", "onboarding_status"],
        associations=["companies", "deals", "tickets"],
    )
    assert isinstance(contact, SimplePublicObjectWithAssociations)
    assert contact.properties["onboarding_step"] == JANE.onboarding_step
    companies = contact.associations["companies"].results
    assert {a.id for a in companies} == {JANE.hubspot_company_id}
    assert {a.type for a in companies} == {"contact_to_company", "contact_to_company_unlabeled"}
    assert [a.id for a in contact.associations["tickets"].results] == JANE.ticket_ids
    assert {a.id for a in contact.associations["deals"].results} == set(JANE.deal_ids)


async def test_get_unknown_contact_is_404(sdk: HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        await call(sdk.crm.contacts.basic_api.get_by_id, "999999999")
    assert caught.value.status == 404
    assert '"category":"OBJECT_NOT_FOUND"' in caught.value.body.replace(" ", "")


async def test_batch_read_deals_and_companies(sdk: HubSpot) -> None:
    acme = WORLD.companies_by_id[JANE.hubspot_company_id]  # type: ignore[index]
    deals = await call(
        sdk.crm.deals.batch_api.read,
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=d) for d in acme.deal_ids],
            properties=["dealname", "amount", "dealstage"],
            properties_with_history=[],
        ),
    )
    assert deals.status == "COMPLETE"
    assert {d.id for d in deals.results} == set(acme.deal_ids)
    assert all(d.properties["dealname"].startswith("Acme Inc") for d in deals.results)
    from hubspot.crm.companies import BatchReadInputSimplePublicObjectId as CompanyBatch
    from hubspot.crm.companies import SimplePublicObjectId as CompanyId

    companies = await call(
        sdk.crm.companies.batch_api.read,
        CompanyBatch(
            inputs=[CompanyId(id=acme.hubspot_id)],
            properties=["name", "dwolla_id"],
            properties_with_history=[],
        ),
    )
    assert companies.results[0].properties == {"name": "Acme Inc", "dwolla_id": acme.dwolla_id}


async def test_v4_associations(sdk: HubSpot) -> None:
    page = await call(
        sdk.crm.associations.v4.basic_api.get_page, "contacts", JANE.hubspot_contact_id, "companies"
    )
    assert isinstance(page, CollectionResponseMultiAssociatedObjectWithLabelForwardPaging)
    [link] = page.results
    assert link.to_object_id == JANE.hubspot_company_id
    assert {(t.type_id, t.label, t.category) for t in link.association_types} == {
        (1, "Primary", "HUBSPOT_DEFINED"),
        (279, None, "HUBSPOT_DEFINED"),
    }
    tickets = await call(
        sdk.crm.associations.v4.basic_api.get_page, "contact", JANE.hubspot_contact_id, "tickets"
    )
    assert [r.to_object_id for r in tickets.results] == JANE.ticket_ids


async def test_wrong_token_is_401_with_hubspot_body(server: LiveServer) -> None:
    bad = HubSpot(access_token="pat-na1-wrong", host=server.url)
    with pytest.raises(ApiException) as caught:
        await call(bad.crm.contacts.search_api.do_search, email_eq("jane@acme.io"))
    assert caught.value.status == 401
    assert '"category":"INVALID_AUTHENTICATION"' in caught.value.body.replace(" ", "")


async def test_list_pages_with_associations(sdk: HubSpot) -> None:
    page = await call(
        sdk.crm.companies.basic_api.get_page, limit=2, properties=["name"], associations=["contacts"]
    )
    assert [c.properties["name"] for c in page.results] == ["Acme Inc", "Globex Corporation"]
    acme_contacts = {a.id for a in page.results[0].associations["contacts"].results}
    assert acme_contacts == {"101", "151"}
    following = await call(sdk.crm.companies.basic_api.get_page, limit=2, after=page.paging.next.after)
    assert [c.id for c in following.results] == ["9700000103", "9700000104"]
