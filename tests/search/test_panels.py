"""The search page and its HTML panels (htmx partials): content, errors with Retry, escaping, masking."""

from __future__ import annotations

from tests.integrations.sims import Sims

HTML = {"Accept": "text/html"}


async def test_page_and_panels_for_a_customer(signed_in) -> None:
    agent = await signed_in("agent")
    page = await agent.client.get("/", params={"q": "jane@acme.io"}, headers=HTML)
    assert page.status_code == 200
    for name in ("hubspot", "dwolla", "sessions", "correlation"):
        assert f'hx-get="/search/panel/{name}?q=jane%40acme.io"' in page.text
    assert 'role="tablist"' in page.text and "js/search.js" in page.text

    hubspot = (await agent.client.get("/search/panel/hubspot", params={"q": "jane@acme.io"})).text
    assert "Jane Doe" in hubspot and "Acme Inc" in hubspot and 'data-state="ok"' in hubspot
    assert "5b29279d-6359-4c87-a318-e09095532733" in hubspot  # the Dwolla id kept in HubSpot
    dwolla = (await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})).text
    assert "R01" in dwolla and "Insufficient Funds" in dwolla and "$225.00" in dwolla
    assert dwolla.index("R01") < dwolla.index("processed")  # the failed one is the newest
    corr = (await agent.client.get("/search/panel/correlation", params={"q": "jane@acme.io"})).text
    assert "matched by" in corr and "Dwolla id" in corr
    sessions = (await agent.client.get("/search/panel/sessions", params={"q": "Jane Doe"})).text
    assert 'hx-get="/partials/sessions?customer=jane%40acme.io&amp;q=Jane+Doe"' in sessions


async def test_empty_state_and_error_with_retry(signed_in, sims: Sims) -> None:
    agent = await signed_in("agent")
    empty = (await agent.client.get("/search/panel/hubspot", params={"q": "nobody-here@example.org"})).text
    assert 'data-state="empty"' in empty and "No HubSpot contact" in empty
    sims.dwolla.knobs(error_rate=1.0)
    failed = (await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})).text
    assert 'data-state="error"' in failed and "Dwolla is not answering (" in failed
    assert 'hx-get="/search/panel/dwolla?q=jane%40acme.io&amp;refresh=1"' in failed and ">Retry<" in failed
    corr = (await agent.client.get("/search/panel/correlation", params={"q": "jane@acme.io"})).text
    assert "cannot be compared" in corr


async def test_retry_goes_through_the_open_circuit_as_soon_as_dwolla_recovers(signed_in, sims: Sims) -> None:
    agent = await signed_in("agent")
    sims.dwolla.knobs(error_rate=1.0, error_status=503)
    for _ in range(3):  # 3 tries each: the breaker opens after 5 failures in a row
        await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})
    down = (await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})).text
    assert "Dwolla is not answering (5 tries over " in down and "circuit open" in down  # plain, then details
    sims.dwolla.knobs(error_rate=0.0)
    waiting = (await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})).text
    assert 'data-state="error"' in waiting  # automatic calls still wait out the cool-down (15 s)
    retried = await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io", "refresh": "1"})
    assert 'data-state="ok"' in retried.text and "R01" in retried.text
    after = (await agent.client.get("/search/panel/summary", params={"q": "jane@acme.io"})).text
    assert 'data-testid="summary-failure"' in after  # the circuit is closed again for everyone


async def test_query_text_is_escaped_everywhere(signed_in) -> None:
    agent = await signed_in("agent")
    evil = '<img src=x onerror=alert(1)>"'
    page = (await agent.client.get("/", params={"q": evil}, headers=HTML)).text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    panel = (await agent.client.get("/search/panel/hubspot", params={"q": evil})).text
    assert "<img src=x" not in panel
    bad = await agent.client.get("/", params={"q": "x" * 300}, headers=HTML)
    assert bad.status_code == 200 and "at most 200 characters" in bad.text


async def test_viewer_sees_masked_pii_in_panels(signed_in) -> None:
    viewer = await signed_in("viewer")
    hubspot = (await viewer.client.get("/search/panel/hubspot", params={"q": "maria@globex.com"})).text
    assert "maria@globex.com" not in hubspot and "m***@globex.com" in hubspot
    assert "555-0147" not in hubspot
    corr = (await viewer.client.get("/search/panel/correlation", params={"q": "maria@globex.com"})).text
    assert "maria.garcia@globex.com" not in corr and "E-mail differs" in corr
