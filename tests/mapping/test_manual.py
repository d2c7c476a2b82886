"""Manual links and unlinks: agents only, audited with who and why, and they survive re-scoring."""

from __future__ import annotations

from sqlalchemy import select

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from tests.mapping.helpers import Batch, link_of, send

JANE = "jane@acme.io"
JOHN = "john@acme.io"


async def _session_id(sessionmaker, device: str, session: str) -> str:
    async with sessionmaker() as db:
        return str((await send(db, Batch(device, session, 3 * 24 * 60, 10, ip="10.9.9.9"))).id)


async def test_manual_link_and_unlink_win_over_rescoring(signed_in, sessionmaker, settings):
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login", 0, 10, ip="10.0.0.1", email=JANE))
    sid = await _session_id(sessionmaker, "dev1", "anon")
    agent = await signed_in("agent")

    # Jane was linked automatically; the agent knows better: it was John on Jane's laptop.
    r = await agent.client.delete(
        "/api/clarity/sessions/map",
        params={"sessionId": sid, "customerEmail": JANE, "reason": "John used Jane's laptop"},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "unlink"
    r = await agent.client.post(
        "/api/clarity/sessions/map",
        json={"sessionId": sid, "customerEmail": JOHN, "reason": "customer said so on the phone"},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["method"], body["confidence"], body["decision"]) == ("manual", 1.0, "link")
    assert "customer said so on the phone" in body["evidence"][0]["reason"]

    # More evidence for Jane on that browser: re-scoring must not undo the agent's decisions.
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login2", 2 * 24 * 60, 10, ip="10.0.0.1", email=JANE))
        await send(db, Batch("dev1", "anon", 3 * 24 * 60, 20, ip="10.9.9.9"))
        rows = await link_of(db, "dev1", "anon")
        assert rows[JOHN].manual_decision == "link" and rows[JOHN].confidence_score == 1.0
        assert rows[JANE].manual_decision == "unlink" and rows[JANE].confidence_score == 0.0
        assert set(rows) == {JANE, JOHN}
        # The other anonymous sessions of the browser are still scored automatically.
        entries = (await db.scalars(select(AuditEntry).where(AuditEntry.action.like("mapping.%")))).all()
    by_action = {e.action: e for e in entries}
    assert by_action["mapping.unlink"].target == audit.customer_ref(JANE, settings)
    assert by_action["mapping.link"].target == audit.customer_ref(JOHN, settings)
    assert by_action["mapping.link"].actor_email == agent.agent.email
    assert by_action["mapping.link"].detail["reason"] == "customer said so on the phone"
    assert JANE not in str(by_action["mapping.unlink"].detail)

    # The sessions API honours the decisions.
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JOHN})
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [sid]
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "min_confidence": 0})
    assert sid not in [i["id"] for i in r.json()["items"]]


async def test_unlink_renormalises_the_remaining_candidates(signed_in, sessionmaker):
    async with sessionmaker() as db:
        for i in range(2):
            await send(db, Batch("family", f"j{i}", i * 24 * 60, 10, ip="10.0.0.1", email=JANE))
            await send(db, Batch("family", f"o{i}", i * 24 * 60 + 300, 10, ip="10.0.0.1", email=JOHN))
    sid = await _session_id(sessionmaker, "family", "anon")
    async with sessionmaker() as db:
        before = {e: r.confidence_score for e, r in (await link_of(db, "family", "anon")).items()}
    agent = await signed_in("agent")
    r = await agent.client.request(
        "DELETE",
        "/api/clarity/sessions/map",
        json={"sessionId": sid, "customerEmail": JANE},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    async with sessionmaker() as db:
        after = await link_of(db, "family", "anon")
    assert after[JOHN].manual_decision is None
    assert after[JOHN].confidence_score > before[JOHN]


async def test_manual_routes_need_an_agent_and_csrf(signed_in, sessionmaker, client):
    sid = await _session_id(sessionmaker, "dev1", "anon")
    body = {"sessionId": sid, "customerEmail": JANE}
    assert (await client.post("/api/clarity/sessions/map", json=body)).status_code == 401
    viewer = await signed_in("viewer", email="viewer@example.com")
    assert (
        await viewer.client.post("/api/clarity/sessions/map", json=body, headers=viewer.headers())
    ).status_code == 403
    agent = await signed_in("agent")
    assert (await agent.client.post("/api/clarity/sessions/map", json=body)).status_code == 403  # no CSRF
    r = await agent.client.post(
        "/api/clarity/sessions/map",
        json={**body, "sessionId": "00000000-0000-0000-0000-000000000000"},
        headers=agent.headers(),
    )
    assert r.status_code == 404
    r = await agent.client.post(
        "/api/clarity/sessions/map", json={**body, "customerEmail": "nope"}, headers=agent.headers()
    )
    assert r.status_code == 400
    r = await agent.client.delete(
        "/api/clarity/sessions/map", params={"sessionId": sid}, headers=agent.headers()
    )
    assert r.status_code == 400 and r.json()["field"] == "customerEmail"


async def test_session_card_buttons(signed_in, sessionmaker):
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login", 0, 10, ip="10.0.0.1", email=JANE))
    sid = await _session_id(sessionmaker, "dev1", "anon")
    agent = await signed_in("agent")
    r = await agent.client.post(
        "/partials/mapping/unlink",
        data={"session_id": sid, "customer_email": JANE, "reason": "<script>x</script>"},
        headers={**agent.headers(), "HX-Request": "true"},
    )
    assert r.status_code == 200, r.text
    assert "Not linked to a customer" in r.text
    assert 'hx-post="/partials/mapping/link"' in r.text
    r = await agent.client.post(
        "/partials/mapping/link",
        data={"session_id": sid, "customer_email": JANE, "reason": "<script>x</script>"},
        headers={**agent.headers(), "HX-Request": "true"},
    )
    assert r.status_code == 200, r.text
    assert "Linked by an agent" in r.text and "100% sure" in r.text
    assert "<script>x</script>" not in r.text and "&lt;script&gt;" in r.text
    assert 'hx-post="/partials/mapping/unlink"' in r.text
    viewer = await signed_in("viewer", email="viewer@example.com")
    r = await viewer.client.post(
        "/partials/mapping/link", data={"session_id": sid, "customer_email": JANE}, headers=viewer.headers()
    )
    assert r.status_code == 403
