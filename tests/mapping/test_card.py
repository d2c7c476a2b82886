"""The mapping part of the session card: method, confidence and evidence in words; buttons for agents."""

from __future__ import annotations

from tests.mapping.helpers import Batch, send

JANE = "jane@acme.io"


async def test_card_shows_evidence_and_buttons_by_role(signed_in, sessionmaker):
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login", 0, 10, ip="10.0.0.1", email=JANE))
        await send(db, Batch("dev1", "anon", 3 * 24 * 60, 10, ip="172.16.0.2"))
    agent = await signed_in("agent")
    r = await agent.client.get(
        "/partials/sessions", params={"customer": JANE}, headers={"Accept": "text/html"}
    )
    assert r.status_code == 200, r.text
    html = r.text
    assert "Same browser" in html and "Signed in" in html
    assert "same browser as the signed-in session of 2 Nov" in html
    assert "100% sure" in html
    assert html.count('hx-post="/partials/mapping/unlink"') == 2
    viewer = await signed_in("viewer", email="viewer@example.com")
    r = await viewer.client.get(
        "/partials/sessions", params={"customer": JANE}, headers={"Accept": "text/html"}
    )
    assert "same browser as the signed-in session" in r.text
    assert "/partials/mapping/" not in r.text
    assert JANE not in r.text  # viewers see masked e-mails
