"""GET /api/search against the simulators: all sources at once, correlation, cache, history, audit."""

from __future__ import annotations

import pytest

from tests.integrations.sims import Sims

JANE_DWOLLA = "5b29279d-6359-4c87-a318-e09095532733"


async def test_search_by_email_answers_every_source_and_correlates(signed_in, sims: Sims) -> None:
    agent = await signed_in("agent")
    r = await agent.client.get("/api/search", params={"q": "  Jane@Acme.io "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {
        "raw": "  Jane@Acme.io ",
        "text": "Jane@Acme.io",
        "kind": "email",
        "email": "jane@acme.io",
        "phoneE164": None,
    }
    assert set(body) == {"query", "hubspot", "dwolla", "sessions", "correlation", "summary"}
    hubspot, dwolla = body["hubspot"], body["dwolla"]
    assert hubspot["status"] == "ok" and dwolla["status"] == "ok"
    assert isinstance(hubspot["tookMs"], int)
    [item] = hubspot["items"]
    assert item["contact"]["email"] == "jane@acme.io"
    assert item["contact"]["dwollaId"] == JANE_DWOLLA
    assert [c["name"] for c in item["companies"]] == ["Acme Inc"]
    assert item["tickets"]
    [detail] = dwolla["items"]
    assert detail["customer"]["id"] == JANE_DWOLLA
    newest = detail["transfers"][0]
    assert (newest["status"], newest["amount"], newest["failureCode"]) == ("failed", "225.00", "R01")
    assert detail["fundingSources"]
    assert body["sessions"]["status"] in ("ok", "error")
    if body["sessions"]["status"] == "error":
        assert body["sessions"]["error"]
    corr = body["correlation"]
    assert corr["status"] == "matched"
    assert corr["matches"][0]["method"] == "dwolla_id"
    assert corr["matches"][0]["confidence"] >= 0.9
    assert corr["bestEmail"] == "jane@acme.io"


@pytest.mark.parametrize(
    ("q", "method", "fields"),
    [
        ("maria@globex.com", "dwolla_id", {"email"}),
        ("robert@initech.com", "dwolla_id", {"name"}),
        ("priya@umbrella.health", "email", {"dwolla_id", "status"}),
    ],
)
async def test_correlation_of_demo_customers_lists_inconsistencies(signed_in, q, method, fields) -> None:
    agent = await signed_in("agent")
    body = (await agent.client.get("/api/search", params={"q": q})).json()
    if body["dwolla"]["status"] == "ok" and not body["dwolla"]["items"]:
        pytest.fail(f"Dwolla found nothing for {q}")
    [m] = body["correlation"]["matches"]
    assert m["method"] == method
    assert fields <= {i["field"] for i in m["inconsistencies"]}


async def test_search_by_phone_and_partial_name(signed_in) -> None:
    agent = await signed_in("agent")
    body = (await agent.client.get("/api/search", params={"q": "(415) 555-0101"})).json()
    assert body["query"]["phoneE164"] == "+14155550101"
    assert [i["contact"]["email"] for i in body["hubspot"]["items"]] == ["jane@acme.io"]
    # Dwolla has no phone search: the number's owner is followed through HubSpot's Dwolla id.
    assert [i["customer"]["id"] for i in body["dwolla"]["items"]] == [JANE_DWOLLA]
    assert body["correlation"]["matches"][0]["method"] == "dwolla_id"
    body = (await agent.client.get("/api/search", params={"q": "chen"})).json()
    assert "robert@initech.com" in [i["contact"]["email"] for i in body["hubspot"]["items"]]
    assert "Bob" in [i["customer"]["firstName"] for i in body["dwolla"]["items"]]


async def test_empty_or_over_long_query_is_a_400_naming_q(signed_in) -> None:
    agent = await signed_in("agent")
    for params in ({"q": ""}, {"q": "   "}, {"q": "x" * 201}, {}):
        r = await agent.client.get("/api/search", params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == "q"
    assert "200" in r.json()["detail"] or "required" in r.json()["detail"] or "empty" in r.json()["detail"]


async def test_search_needs_sign_in(client) -> None:
    r = await client.get("/api/search", params={"q": "jane@acme.io"})
    assert r.status_code == 401


async def test_viewers_get_masked_email_and_phone(signed_in) -> None:
    viewer = await signed_in("viewer")
    r = await viewer.client.get("/api/search", params={"q": "jane@acme.io"})
    assert r.status_code == 200
    body = r.json()
    body.pop("query")  # the viewer's own words are echoed back as typed
    assert "jane@acme.io" not in str(body)
    contact = r.json()["hubspot"]["items"][0]["contact"]
    assert contact["email"] == "j***@acme.io"
    assert "415" not in contact["phone"]


async def test_a_phone_search_asks_the_database_nothing_for_sessions(settings) -> None:
    """Sessions keep no phone number: the sessions source answers "none" without a connection."""
    from types import SimpleNamespace

    from supportlens.customers.query import parse_query
    from supportlens.search.sources import local_sessions

    def no_database() -> None:
        raise AssertionError("a phone search checked out a database connection")

    directory = SimpleNamespace(sessionmaker=no_database, settings=settings, deadline=1.0)
    result = await local_sessions(directory, parse_query("+1 415 555 2671"))  # type: ignore[arg-type]
    assert (result.status, result.items) == ("ok", [])
    named = await local_sessions(directory, parse_query("Jane Doe"))  # type: ignore[arg-type]
    assert named.status == "error"  # a name is searched: it reached for the database
