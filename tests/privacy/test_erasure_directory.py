"""Erasure asks HubSpot and Dwolla (the simulators) who the customer is there: the receipt names their
ids for the manual steps, and searches by their phone or ids leave search history with the e-mail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supportlens.config import Settings
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)
from tests.privacy.test_erasure_every_table import columns_holding

JANE = "jane@acme.io"
JANE_PHONE = "+14155550101"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], sims: Sims) -> Settings:  # noqa: F811
    return settings_factory(**sims.settings(), search_source_deadline_seconds=3)


async def test_searches_by_her_phone_and_ids_go_and_the_receipt_names_her_ids(signed_in, db) -> None:
    agent = await signed_in("agent")
    found = (await agent.client.get("/api/search", params={"q": JANE})).json()
    hubspot_id = found["hubspot"]["items"][0]["contact"]["id"]
    dwolla_id = found["dwolla"]["items"][0]["customer"]["id"]
    for q in ("+1 415-555-0101", dwolla_id, "Maria"):
        assert (await agent.client.get("/api/search", params={"q": q})).status_code == 200
    history = (await agent.client.get("/api/search/history")).json()["items"]
    assert len(history) == 4

    admin = await signed_in("admin")
    r = await admin.client.delete(f"/api/customers/{JANE}", headers=admin.headers())
    assert r.status_code == 200, r.text
    steps = {s["system"]: s for s in r.json()["manualSteps"]}
    assert steps["HubSpot"]["ids"] == [hubspot_id] and steps["HubSpot"]["note"] == ""
    assert steps["Dwolla"]["ids"] == [dwolla_id] and steps["Dwolla"]["note"] == ""
    assert r.json()["deleted"]["search_history"] == 3

    left = (await agent.client.get("/api/search/history")).json()["items"]
    assert [h["query"] for h in left] == ["Maria"]  # another customer's search stays
    db.expire_all()
    for needle in (JANE, JANE_PHONE, dwolla_id):
        assert await columns_holding(db, needle) == [], needle


async def test_a_directory_that_does_not_answer_is_named_in_the_receipt(signed_in, sims: Sims) -> None:  # noqa: F811
    sims.hubspot.knobs(error_rate=1.0)
    admin = await signed_in("admin")
    r = await admin.client.delete(f"/api/customers/{JANE}", headers=admin.headers())
    assert r.status_code == 200, r.text
    steps = {s["system"]: s for s in r.json()["manualSteps"]}
    assert "HubSpot could not be asked" in steps["HubSpot"]["note"] and steps["HubSpot"]["ids"] == []
