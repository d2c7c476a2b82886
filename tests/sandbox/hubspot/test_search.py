"""HubSpot simulator semantics: filter operators, groups, limits, properties, sorts, 429s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from supportlens_sandbox.hubspot import HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world

WORLD = demo_world()
AUTH = {"authorization": f"Bearer {HUBSPOT_TOKEN}"}
APP = create_hubspot_app(WORLD, Knobs(rate_limits=False))


@pytest.fixture
async def hs() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=APP), base_url="http://hubspot"
    ) as client:
        yield client


def f(prop: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"propertyName": prop, "operator": op}
    if value is not None:
        out["value"] = value
    out.update(extra)
    return out


async def search(hs: httpx2.AsyncClient, *groups: list[dict[str, Any]], kind: str = "contacts",
                 **body: Any) -> dict[str, Any]:  # fmt: skip
    payload = {"filterGroups": [{"filters": g} for g in groups], "limit": 200, **body}
    r = await hs.post(f"/crm/v3/objects/{kind}/search", json=payload, headers=AUTH)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def emails(data: dict[str, Any]) -> set[str]:
    return {r["properties"]["email"] for r in data["results"]}


def ms(dt: Any) -> int:
    return int(dt.timestamp() * 1000)


async def test_eq_neq_in_not_in(hs: httpx2.AsyncClient) -> None:
    assert emails(await search(hs, [f("email", "EQ", "Maria@Globex.com")])) == {"maria@globex.com"}
    leads = {c.email for c in WORLD.hubspot_customers if c.lifecycle_stage == "lead"}
    assert emails(await search(hs, [f("lifecyclestage", "EQ", "lead")], properties=["email"])) == leads
    not_leads = await search(hs, [f("lifecyclestage", "NEQ", "lead")])
    assert not_leads["total"] == len(WORLD.hubspot_customers) - len(leads)
    either = {c.email for c in WORLD.hubspot_customers if c.lifecycle_stage in ("lead", "opportunity")}
    assert emails(await search(hs, [f("lifecyclestage", "IN", values=["lead", "opportunity"])])) == either
    rest = await search(hs, [f("lifecyclestage", "NOT_IN", values=["lead", "opportunity"])])
    assert rest["total"] == len(WORLD.hubspot_customers) - len(either)


async def test_has_property_and_tokens(hs: httpx2.AsyncClient) -> None:
    linked = {c.email for c in WORLD.hubspot_customers if c.hubspot_dwolla_id}
    assert 0 < len(linked) < len(WORLD.hubspot_customers)
    assert emails(await search(hs, [f("dwolla_id", "HAS_PROPERTY")])) == linked
    unlinked = await search(hs, [f("dwolla_id", "NOT_HAS_PROPERTY")], properties=["email", "dwolla_id"])
    assert all(r["properties"]["dwolla_id"] is None for r in unlinked["results"])
    assert unlinked["total"] == len(WORLD.hubspot_customers) - len(linked)
    assert emails(await search(hs, [f("email", "CONTAINS_TOKEN", "*@acme.io")])) == {
        "jane@acme.io",
        "john.smith@acme.io",
    }
    assert emails(await search(hs, [f("lastname", "CONTAINS_TOKEN", "doe")])) == {"jane@acme.io"}
    no_acme = await search(hs, [f("email", "NOT_CONTAINS_TOKEN", "*@acme.io")])
    assert no_acme["total"] == len(WORLD.hubspot_customers) - 2


async def test_ranges_on_dates_and_numbers(hs: httpx2.AsyncClient) -> None:
    cutoff = WORLD.now.replace(microsecond=0) - (WORLD.now - WORLD.customers[0].created)
    newer = {c.email for c in WORLD.hubspot_customers if c.created > cutoff}
    assert emails(await search(hs, [f("createdate", "GT", str(ms(cutoff)))])) == newer
    older_or_same = await search(hs, [f("createdate", "LTE", cutoff.isoformat())])
    assert older_or_same["total"] == len(WORLD.hubspot_customers) - len(newer)
    low, high = sorted(int(c.hubspot_contact_id) for c in WORLD.hubspot_customers)[10:21:10]  # type: ignore[arg-type]
    between = await search(hs, [f("hs_object_id", "BETWEEN", str(low), highValue=str(high))])
    assert between["total"] == 11
    lt = await search(hs, [f("hs_object_id", "LT", str(low))])
    assert lt["total"] == 10
    gte = await search(hs, [f("hs_object_id", "GTE", str(high))])
    assert gte["total"] == len(WORLD.hubspot_customers) - 20


async def test_groups_or_filters_and(hs: httpx2.AsyncClient) -> None:
    both = await search(hs, [f("email", "EQ", "jane@acme.io")], [f("email", "EQ", "maria@globex.com")])
    assert emails(both) == {"jane@acme.io", "maria@globex.com"}
    anded = await search(hs, [f("company", "EQ", "Acme Inc"), f("firstname", "EQ", "John")])
    assert emails(anded) == {"john.smith@acme.io"}
    combined = await search(hs, [f("company", "EQ", "Acme Inc")], query="jane")
    assert emails(combined) == {"jane@acme.io"}


async def test_properties_sorts_and_string_values(hs: httpx2.AsyncClient) -> None:
    data = await search(
        hs,
        [f("company", "EQ", "Acme Inc")],
        properties=["email", "num_associated_deals", "onboarding_step", "no_such_property"],
        sorts=[{"propertyName": "email", "direction": "DESCENDING"}],
    )
    assert [r["properties"]["email"] for r in data["results"]] == ["john.smith@acme.io", "jane@acme.io"]
    props = data["results"][0]["properties"]
    assert set(props) == {"email", "num_associated_deals", "onboarding_step", "createdate", "hs_object_id",
                          "lastmodifieddate"}  # fmt: skip
    assert all(v is None or isinstance(v, str) for v in props.values())
    default = await search(hs, [f("email", "EQ", "jane@acme.io")])
    assert set(default["results"][0]["properties"]) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }  # fmt: skip
    newest = await search(hs, [], sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}], limit=5)
    dates = [r["properties"]["createdate"] for r in newest["results"]]
    assert dates == sorted(dates, reverse=True)


async def test_other_object_types(hs: httpx2.AsyncClient) -> None:
    acme = WORLD.companies_by_id["9700000101"]
    companies = await search(
        hs, [f("dwolla_id", "EQ", acme.dwolla_id)], kind="companies", properties=["name"]
    )
    assert [r["properties"]["name"] for r in companies["results"]] == ["Acme Inc"]
    by_query = await search(hs, kind="companies", query="globex")
    assert [r["id"] for r in by_query["results"]] == ["9700000102"]
    deals = await search(hs, [f("dealname", "CONTAINS_TOKEN", "acme")], kind="deals")
    assert {r["id"] for r in deals["results"]} == set(acme.deal_ids)
    tickets = await search(
        hs, [f("hs_ticket_priority", "EQ", "URGENT")], kind="tickets", properties=["subject"]
    )
    assert "Account suspended" in {r["properties"]["subject"] for r in tickets["results"]}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"filterGroups": [{"filters": [f("email", "HAS_PROPERTY")]}] * 6}, "filter groups"),
        ({"filterGroups": [{"filters": [f("email", "HAS_PROPERTY")] * 7}]}, "filters in a filter group"),
        ({"filterGroups": [{"filters": [f("email", "HAS_PROPERTY")] * 5}] * 4}, "maximum is 18"),
        ({"limit": 201}, "at most 200"),
        ({"sorts": ["email", "firstname"]}, "one sort"),
        ({"filterGroups": [{"filters": [f("nope", "EQ", "x")]}]}, "does not exist"),
        ({"filterGroups": [{"filters": [f("email", "LIKE", "x")]}]}, "Unknown operator"),
        ({"filterGroups": [{"filters": [f("email", "IN")]}]}, "values"),
        ({"filterGroups": [{"filters": [f("email", "EQ")]}]}, "needs a 'value'"),
        ({"after": "9950", "limit": 100}, "at most 10000"),
    ],
)
async def test_invalid_searches_are_400(hs: httpx2.AsyncClient, body: dict[str, Any], fragment: str) -> None:
    r = await hs.post("/crm/v3/objects/contacts/search", json=body, headers=AUTH)
    assert r.status_code == 400
    data = r.json()
    assert data["status"] == "error" and data["category"] == "VALIDATION_ERROR" and data["correlationId"]
    assert fragment in data["message"]


async def test_malformed_json_request_is_400(hs: httpx2.AsyncClient) -> None:
    r = await hs.post("/crm/v3/objects/contacts/search", content=b"{nope", headers=AUTH)
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"


async def test_search_limit_is_five_per_second_per_token() -> None:
    app = create_hubspot_app(WORLD, Knobs())
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://hubspot") as hs:
        results = await asyncio.gather(
            *(hs.post("/crm/v3/objects/contacts/search", json={}, headers=AUTH) for _ in range(8))
        )
        assert sorted(r.status_code for r in results) == [200] * 5 + [429] * 3
        body = next(r.json() for r in results if r.status_code == 429)
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "SECONDLY"
        assert body["status"] == "error" and body["correlationId"]
        # A different token has its own budget; reads are not counted against search.
        other = create_hubspot_app(WORLD, Knobs(), tokens=(HUBSPOT_TOKEN, "pat-second"))
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=other), base_url="http://h") as two:
            for token in (HUBSPOT_TOKEN, "pat-second"):
                for _ in range(5):
                    r = await two.post("/crm/v3/objects/contacts/search", json={},
                                       headers={"authorization": f"Bearer {token}"})  # fmt: skip
                    assert r.status_code == 200
        r = await hs.get("/crm/v3/objects/contacts/101", headers=AUTH)
        assert r.status_code == 200
        await asyncio.sleep(1.05)
        r = await hs.post("/crm/v3/objects/contacts/search", json={}, headers=AUTH)
        assert r.status_code == 200
        stats = app.state.sandbox.stats()
        assert stats["max_searches_per_second"] == 5 and stats["counters"]["rate_limited"] == 3


async def test_general_ten_secondly_limit_on_reads() -> None:
    app = create_hubspot_app(WORLD, Knobs(general_per_10s=3))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://hubspot") as hs:
        statuses = []
        for _ in range(4):
            r = await hs.get("/crm/v3/objects/contacts/101", headers=AUTH)
            statuses.append(r.status_code)
        assert statuses == [200, 200, 200, 429]
        assert r.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert r.json()["message"] == "You have reached your ten_secondly_rolling limit."


async def test_get_by_email_id_property_and_owners(hs: httpx2.AsyncClient) -> None:
    r = await hs.get("/crm/v3/objects/contacts/JANE@ACME.IO", params={"idProperty": "email"}, headers=AUTH)
    assert r.json()["id"] == "101"
    owner_id = WORLD.customer("jane@acme.io").owner.id  # type: ignore[union-attr]
    r = await hs.get(f"/crm/v3/owners/{owner_id}", headers=AUTH)
    assert r.status_code == 200 and r.json()["firstName"] == "Alex" and r.json()["email"].endswith(".demo")
    r = await hs.get("/crm/v3/owners", headers=AUTH)
    assert len(r.json()["results"]) == len(WORLD.owners)
