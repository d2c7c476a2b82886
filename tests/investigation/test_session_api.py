"""Session view, timeline windows, analytics, heatmap and annotations over HTTP."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.sessions.goals import ConversionGoal
from tests.investigation.seed import SHOP, seed_big_session, seed_checkout_session


def player_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" class="player-data">(.*?)</script>', html, re.S)
    assert m, "no player data block"
    return json.loads(m.group(1))


async def actions(db) -> list[str]:
    return [a.action for a in (await db.scalars(select(AuditEntry).order_by(AuditEntry.occurred_at))).all()]


async def test_session_page_for_an_agent(signed_in, sessionmaker, db):
    seeded = await seed_checkout_session(sessionmaker)
    agent = await signed_in("agent")
    r = await agent.client.get(f"/sessions/{seeded.id}?t=300000", headers={"Accept": "text/html"})
    assert r.status_code == 200
    html = r.text
    assert 'data-recording="open"' in html
    assert "https://clarity.microsoft.com/player/proj1/user1/s1abc" in html
    assert "jane@acme.io" in html
    data = player_data(html)
    assert data["start"] == 300000
    assert data["durationMs"] == 360000
    assert [m["type"] for m in data["markers"]].count("error") == 1
    assert data["markers"][-1]["msg"].startswith("TypeError")
    assert data["canAnnotate"] is True
    assert f"/api/clarity/sessions/{seeded.id}/export?format=csv" in html
    assert "session_viewed" in await actions(db)
    # the fragment for a dialog: same content, no page chrome
    panel = await agent.client.get(f"/sessions/{seeded.id}/panel")
    assert panel.status_code == 200
    assert "<html" not in panel.text and "data-player" in panel.text


async def test_viewer_sees_masked_pii_and_no_recording_or_export(signed_in, sessionmaker):
    seeded = await seed_checkout_session(sessionmaker)
    viewer = await signed_in("viewer")
    html = (await viewer.client.get(f"/sessions/{seeded.id}")).text
    assert "jane@acme.io" not in html
    assert "j***@acme.io" in html
    assert 'data-recording="viewer"' in html
    assert "clarity.microsoft.com/player" not in html
    assert "export?format" not in html
    assert player_data(html)["canAnnotate"] is False
    r = await viewer.client.get(f"/api/clarity/sessions/{seeded.id}/export?format=csv")
    assert r.status_code == 403
    r = await viewer.client.post(
        f"/api/clarity/sessions/{seeded.id}/annotate",
        json={"offsetMs": 1000, "note": "x", "category": "issue", "severity": "low"},
        headers=viewer.headers(),
    )
    assert r.status_code == 403


async def test_expired_recording_says_so(signed_in, sessionmaker):
    old = datetime.now(UTC) - timedelta(days=40)
    seeded = await seed_checkout_session(sessionmaker, start=old)
    agent = await signed_in("agent")
    html = (await agent.client.get(f"/sessions/{seeded.id}")).text
    assert 'data-recording="expired"' in html
    assert 'data-recording="open"' not in html


async def test_unknown_and_malformed_session_ids(signed_in):
    agent = await signed_in("agent")
    r = await agent.client.get(f"/api/clarity/sessions/{uuid.uuid4()}/timeline")
    assert r.status_code == 404
    r = await agent.client.get("/api/clarity/sessions/not-a-uuid/timeline")
    assert r.status_code == 400 and r.json()["field"] == "session_id"


async def test_sign_in_required(client, sessionmaker):
    seeded = await seed_checkout_session(sessionmaker)
    r = await client.get(f"/api/clarity/sessions/{seeded.id}/timeline")
    assert r.status_code == 401
    r = await client.get(f"/sessions/{seeded.id}", headers={"Accept": "text/html"})
    assert r.status_code == 303 and "/login" in r.headers["location"]


async def test_timeline_pages_forward_and_back(signed_in, sessionmaker):
    big = await seed_big_session(sessionmaker, n=450)
    agent = await signed_in("agent")
    url = f"/api/clarity/sessions/{big.id}/timeline"
    first = (await agent.client.get(url, params={"limit": 200})).json()
    assert len(first["events"]) == 200 and first["prev"] is None and first["next"]
    assert [e["t"] for e in first["events"]] == sorted(e["t"] for e in first["events"])
    second = (await agent.client.get(url, params={"after": first["next"], "limit": 200})).json()
    third = (await agent.client.get(url, params={"after": second["next"], "limit": 200})).json()
    ids = [e["id"] for w in (first, second, third) for e in w["events"]]
    assert len(ids) == 450 == len(set(ids))
    assert third["next"] is None
    back = (await agent.client.get(url, params={"before": second["prev"], "limit": 50})).json()
    assert [e["id"] for e in back["events"]] == [e["id"] for e in first["events"][-50:]]
    assert back["prev"]
    mid = (await agent.client.get(url, params={"from_ms": 300_000, "limit": 10})).json()
    assert mid["events"][0]["t"] == 300_000 and mid["prev"]
    assert {e["type"] for e in first["events"]} == {"navigation", "click", "scroll"}
    assert all(e["c"] for e in first["events"])


async def test_timeline_rejects_bad_input(signed_in, sessionmaker):
    seeded = await seed_checkout_session(sessionmaker)
    agent = await signed_in("agent")
    url = f"/api/clarity/sessions/{seeded.id}/timeline"
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"from_ms": -1}, "from_ms"),
        ({"after": "garbage"}, "after"),
        ({"before": "12.nothex"}, "before"),
    ):
        r = await agent.client.get(url, params=params)
        assert r.status_code == 400, params
        assert r.json()["field"] == field


async def test_session_analytics(signed_in, sessionmaker, db):
    seeded = await seed_checkout_session(sessionmaker)
    db.add_all(
        [
            ConversionGoal(kind="url", value="/pay", label="Reached payment"),
            ConversionGoal(kind="event", value="checkout_started", label="Checkout"),
            ConversionGoal(kind="url", value="/thank-you", label="Paid"),
        ]
    )
    await db.commit()
    agent = await signed_in("agent")
    r = await agent.client.get(f"/api/clarity/sessions/{seeded.id}/analytics")
    m = r.json()["metrics"]
    assert m["timeOnSite"] == 360
    # gaps: 4+1+4+3 (to 12 s), then 88 s idle (left out), 10+1+.5+.5+.2 then 187.8 idle, .5, 19.5
    assert m["activeTime"] == round(4 + 1 + 4 + 3 + 10 + 1 + 0.5 + 0.5 + 0.2 + 0.5 + 19.5)
    assert m["pages"] == 3 and m["uniquePages"] == 3 and m["bounce"] is False
    assert m["errorCount"] == 1 and m["rageClicks"] == 1 and m["deadClicks"] == 3
    assert m["maxScrollDepth"] == 65
    assert {g["label"]: g["count"] for g in m["goalsReached"]} == {"Reached payment": 1, "Checkout": 1}
    assert m["conversionEvents"] == 2


async def test_heatmap_for_a_session_and_a_customer(signed_in, sessionmaker):
    a = await seed_checkout_session(sessionmaker)
    await seed_checkout_session(
        sessionmaker, clarity_session_id="s2", start=a.session.session_start - timedelta(days=1)
    )
    agent = await signed_in("agent")
    h = (await agent.client.get(f"/api/clarity/sessions/{a.id}/heatmap")).json()
    assert h["url"] == f"{SHOP}/pay"
    assert len(h["points"]) == 6
    assert {(p["w"], p["h"]) for p in h["points"]} == {(1280, 800)}
    assert sorted(p["weight"] for p in h["points"]) == [1, 1, 2, 2, 2, 3]
    assert h["clarityHeatmapUrl"] == "https://clarity.microsoft.com/projects/view/proj1/heatmaps"
    one = (
        await agent.client.get(f"/api/clarity/sessions/{a.id}/heatmap", params={"url": f"{SHOP}/products"})
    ).json()
    assert [(p["x"], p["y"]) for p in one["points"]] == [(640, 900)]
    cust = (
        await agent.client.get("/api/customers/jane@acme.io/heatmap", params={"url": f"{SHOP}/pay"})
    ).json()
    assert len(cust["points"]) == 12
    r = await agent.client.get("/api/customers/not-an-email/heatmap")
    assert r.status_code == 400 and r.json()["field"] == "email"


async def test_unlinked_sessions_are_left_out(signed_in, sessionmaker, db):
    from supportlens.sessions.models import SessionCustomerMapping

    a = await seed_checkout_session(sessionmaker)
    row = (
        await db.scalars(select(SessionCustomerMapping).where(SessionCustomerMapping.session_id == a.id))
    ).one()
    row.manual_decision = "unlink"
    await db.commit()
    agent = await signed_in("agent")
    assert (await agent.client.get("/api/customers/jane@acme.io/sessions")).json()["items"] == []


async def test_session_page_carries_one_window_not_the_whole_session(signed_in, sessionmaker):
    """The bench's building block: a big session's page holds the first 100 events and the markers only."""
    big = await seed_big_session(sessionmaker, n=1200)
    agent = await signed_in("agent")
    data = player_data((await agent.client.get(f"/sessions/{big.id}")).text)
    assert len(data["firstWindow"]["events"]) == 100 and data["firstWindow"]["next"]
    assert {m["type"] for m in data["markers"]} == {"navigation", "error"}
    assert len(data["markers"]) == 1200 // 50 + 2
    assert data["durationMs"] == 1_200_000
    assert data["viewport"] == {"w": 1280, "h": 800}
