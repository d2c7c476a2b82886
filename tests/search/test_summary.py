"""The search page's "what happened" summary, as JSON (`GET /api/search`) and as its HTML fragment."""

from __future__ import annotations

import uuid
from datetime import timedelta

from supportlens.sessions.models import SessionEvent
from supportlens_sandbox.world import demo_world
from tests.integrations.sims import Sims
from tests.investigation.seed import Seeded, seed_checkout_session

HOSTILE = '<img src=x onerror="alert(1)">'


async def _jane_pays_and_fails(sessionmaker) -> Seeded:
    """Jane's checkout session with its TypeError one minute before her R01 transfer (demo world)."""
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    return await seed_checkout_session(
        sessionmaker, start=jane.failed_transfers[0].created - timedelta(seconds=360.5)
    )


async def test_api_search_summary_pairs_the_r01_return_with_the_session_moments(
    signed_in, sessionmaker
) -> None:
    seeded = await _jane_pays_and_fails(sessionmaker)
    agent = await signed_in("agent")
    body = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    summary = body["summary"]
    assert summary["status"] == "trouble", summary
    [failure] = summary["failures"]
    assert (failure["returnCode"], failure["amount"]) == ("R01", "$225.00")
    assert "not enough money" in failure["meaning"]
    kinds = [m["kind"] for m in failure["moments"]]
    assert kinds == ["dead_click", "dead_click", "dead_click", "rage_click", "error"]
    error = failure["moments"][-1]
    assert error["message"].startswith("TypeError") and error["page"] == "/pay"
    assert (error["minutesApart"], error["when"]) == (1, "before")
    assert error["link"] == f"/sessions/{seeded.id}?t=300500"
    assert error["journeyLink"].startswith("/customers/jane@acme.io/journey?from=")
    assert failure["moments"][3]["element"] == "button#later"


async def test_summary_fragment_says_nothing_went_wrong_in_one_line(signed_in) -> None:
    agent = await signed_in("agent")
    html = (await agent.client.get("/search/panel/summary", params={"q": "john.smith@acme.io"})).text
    assert 'data-testid="summary-clear"' in html and "Nothing went wrong" in html
    api = (await agent.client.get("/api/search", params={"q": "john.smith@acme.io"})).json()
    assert api["summary"] == {"status": "clear", "failures": [], "severalCustomers": False}
    nobody = (await agent.client.get("/api/search", params={"q": "nobody@example.org"})).json()
    assert nobody["summary"]["status"] == "no_customer"


async def test_summary_degrades_alone_when_dwolla_fails(signed_in, sims: Sims) -> None:
    agent = await signed_in("agent")
    sims.dwolla.knobs(error_rate=1.0)
    html = (await agent.client.get("/search/panel/summary", params={"q": "jane@acme.io"})).text
    assert 'data-state="error"' in html and "Dwolla is not answering" in html
    assert 'hx-get="/search/panel/summary?q=jane%40acme.io&amp;refresh=1"' in html and ">Retry<" in html
    hubspot = (await agent.client.get("/search/panel/hubspot", params={"q": "jane@acme.io"})).text
    assert 'data-state="ok"' in hubspot  # the rest of the page still answers
    api = (await agent.client.get("/api/search", params={"q": "jane@acme.io", "refresh": "1"})).json()
    assert api["summary"]["status"] == "unavailable" and api["summary"]["error"]


async def test_ingested_strings_are_escaped_in_the_summary(signed_in, sessionmaker) -> None:
    seeded = await _jane_pays_and_fails(sessionmaker)
    error_at = seeded.first("error").timestamp
    async with sessionmaker() as db:
        db.add(
            SessionEvent(
                id=uuid.uuid4(),
                session_id=seeded.id,
                event_type="error",
                timestamp=error_at + timedelta(seconds=1),
                page_url=f"https://shop.example/pay?{HOSTILE}",
                event_data={"message": HOSTILE},
                element_selector=HOSTILE,
            )
        )
        await db.commit()
    agent = await signed_in("agent")
    html = (await agent.client.get("/search/panel/summary", params={"q": "jane@acme.io"})).text
    assert html.count('data-testid="summary-moment"') == 6
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
