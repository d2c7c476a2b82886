"""Agent API and Sessions panel: newest first, paging, confidence, unlinks, viewers, audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from supportlens.capture import sites
from supportlens.capture.ingest import ingest_batch
from supportlens.capture.schemas import IngestBatch
from supportlens.capture.sites import SiteInfo
from supportlens.sessions.models import SessionCustomerMapping
from tests.support.ingest import CHROME_UA, ORIGIN, ago, batch, event

JANE = "jane@acme.io"


async def seed(
    db: Any, key: str, sid: str, *, days: float, customer: str | None = JANE, ip: str = "10.0.0.1", **kw: Any
) -> Any:
    site = await sites.make_cache(0).by_key(db, key)
    assert isinstance(site, SiteInfo)
    events = kw.pop("events", None) or [
        event("navigation", at=ago(days=days, seconds=60), url=f"{ORIGIN}/"),
        event("click", at=ago(days=days, seconds=30), selector="button#pay"),
        event("error", at=ago(days=days, seconds=20), data={"message": "boom"}),
        event("rage_click", at=ago(days=days, seconds=10)),
        event("dead_click", at=ago(days=days, seconds=9)),
    ]
    body = batch(key, events, session_id=sid, customer={"email": customer} if customer else None, **kw)
    await ingest_batch(
        db,
        site,
        IngestBatch.model_validate_json(__import__("json").dumps(body)),
        client_ip=ip,
        user_agent=CHROME_UA,
    )


async def test_list_newest_first_paged_and_audited(signed_in, db, site_key, settings):
    for i, days in enumerate((3, 1, 2, 40)):
        await seed(db, site_key, f"sess{i}", days=days)
    await seed(db, site_key, "other", days=1, customer="someone@else.io")
    agent = await signed_in("agent")
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [s["claritySessionId"] for s in page["items"]] == ["sess1", "sess2"]
    first = page["items"][0]
    assert first["mapping"]["method"] == "email_match" and first["mapping"]["confidence"] == 1.0
    assert first["signals"] == {
        "clicks": 1,
        "errors": 1,
        "rageClicks": 1,
        "deadClicks": 1,
        "maxScrollDepth": 0,
    }
    assert first["recordingUrl"].endswith("/player/proj1/u1abc/sess1") and first["hasRecording"] is True
    r2 = await agent.client.get(
        "/api/clarity/sessions", params={"customer": JANE, "limit": 2, "before": page["nextCursor"]}
    )
    rest = r2.json()
    assert [s["claritySessionId"] for s in rest["items"]] == ["sess0", "sess3"]
    assert rest["nextCursor"] is None
    assert rest["items"][1]["hasRecording"] is False  # 40 days old: past Clarity's 30-day retention
    rows = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "sessions_listed"))).all()
    assert len(rows) == 2 and rows[0].target == audit.customer_ref(JANE, settings)
    assert all(JANE not in (r.target or "") and JANE not in str(r.detail) for r in rows)


async def test_min_confidence_and_manual_unlink(signed_in, db, site_key, worker):
    from supportlens.sessions.models import UserSession

    await seed(db, site_key, "anon", days=1, customer=None, user_id="otherdevice", ip="10.9.9.9")
    await seed(db, site_key, "named", days=2)
    await worker.drained()
    anon_id = (await db.scalars(select(UserSession.id).where(UserSession.clarity_session_id == "anon"))).one()
    named_id = (
        await db.scalars(select(UserSession.id).where(UserSession.clarity_session_id == "named"))
    ).one()
    m = SessionCustomerMapping
    row = await db.scalar(select(m).where(m.session_id == anon_id, m.customer_email == JANE))
    if row is None:
        row = m(session_id=anon_id, customer_email=JANE)
        db.add(row)
    row.confidence_score, row.mapping_method = 0.6, "ip_match"
    row.evidence = [{"method": "ip_match", "score": 0.6, "reason": "same network"}]
    await db.commit()
    agent = await signed_in("agent")
    ids = lambda r: [s["claritySessionId"] for s in r.json()["items"]]  # noqa: E731
    assert ids(await agent.client.get("/api/clarity/sessions", params={"customer": JANE})) == [
        "anon",
        "named",
    ]
    assert ids(
        await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "min_confidence": 0.7})
    ) == ["named"]
    link = (
        await db.scalars(select(SessionCustomerMapping).where(SessionCustomerMapping.session_id == named_id))
    ).one()
    link.manual_decision = "unlink"
    await db.commit()
    assert ids(await agent.client.get("/api/clarity/sessions", params={"customer": JANE})) == ["anon"]


async def test_detail_events_and_recording(signed_in, db, site_key):
    events = [event("click", at=ago(minutes=10, seconds=-i), selector=f"#b{i}") for i in range(5)]
    await seed(db, site_key, "one", days=0, events=events)
    agent = await signed_in("agent")
    listed = (await agent.client.get("/api/clarity/sessions", params={"customer": JANE})).json()["items"][0]
    sid = listed["id"]
    d = (await agent.client.get(f"/api/clarity/sessions/{sid}")).json()
    assert d["customerEmail"] == JANE and d["eventCount"] == 5
    p1 = (await agent.client.get(f"/api/clarity/sessions/{sid}/events", params={"limit": 3})).json()
    assert [e["selector"] for e in p1["items"]] == ["#b0", "#b1", "#b2"]
    p2 = (
        await agent.client.get(
            f"/api/clarity/sessions/{sid}/events",
            params={"limit": 3, "after": p1["nextAfter"], "afterId": p1["nextAfterId"]},
        )
    ).json()
    assert [e["selector"] for e in p2["items"]] == ["#b3", "#b4"] and p2["nextAfter"] is None
    rec = (await agent.client.get(f"/api/clarity/sessions/{sid}/recording")).json()
    assert rec["available"] is True and rec["url"].endswith("/player/proj1/u1abc/one") and rec["expiresAt"]
    assert (
        await agent.client.get("/api/clarity/sessions/00000000-0000-0000-0000-000000000000")
    ).status_code == 404
    actions = {r.action for r in (await db.scalars(select(AuditEntry))).all()}
    assert {"session_viewed", "session_events_viewed", "session_recording_viewed"} <= actions


async def test_viewer_sees_sessions_without_recordings_and_masked_email(signed_in, db, site_key):
    await seed(db, site_key, "one", days=0)
    viewer = await signed_in("viewer")
    items = (await viewer.client.get("/api/clarity/sessions", params={"customer": JANE})).json()["items"]
    assert items[0]["recordingUrl"] is None
    assert items[0]["mapping"]["customerEmail"] == "j***@acme.io"
    sid = items[0]["id"]
    assert (await viewer.client.get(f"/api/clarity/sessions/{sid}/recording")).status_code == 403
    assert (await viewer.client.get(f"/api/clarity/sessions/{sid}")).json()["recordingUrl"] is None
    html = (await viewer.client.get("/partials/sessions", params={"customer": JANE})).text
    assert "clarity.microsoft.com/player" not in html and JANE not in html


async def test_api_needs_sign_in(client):
    r = await client.get("/api/clarity/sessions", params={"customer": JANE})
    assert r.status_code == 401


async def test_panel_cards_badges_and_show_more(signed_in, db, site_key):
    for i in range(7):
        await seed(db, site_key, f"s{i}", days=i + 0.5)
    await seed(db, site_key, "old", days=35)
    agent = await signed_in("agent")
    r = await agent.client.get("/partials/sessions", params={"customer": JANE, "limit": 5})
    html = r.text
    assert r.status_code == 200
    assert html.count('class="session-card session-row"') == 5
    assert "1 error" in html and "1 rage" in html and "1 dead" in html
    assert "Signed in" in html and "100% sure" in html
    assert 'href="/sessions/' in html and "Recording in Clarity" in html
    assert "Show more sessions" in html
    import re

    more = re.search(r'hx-get="([^"]+before=[^"]+)"', html)
    assert more
    r2 = await agent.client.get(more.group(1).replace("&amp;", "&"))
    assert r2.text.count('class="session-card session-row"') == 3
    assert "Recording expired" in r2.text and "Show more sessions" not in r2.text
    by_q = await agent.client.get("/partials/sessions", params={"q": JANE, "limit": 5})
    assert by_q.text.count('class="session-card session-row"') == 5
    none = await agent.client.get("/partials/sessions", params={"customer": "nobody@acme.io"})
    assert "No recorded sessions" in none.text


async def test_search_sessions_contract(db, site_key, settings):
    from supportlens.customers.query import parse_query
    from supportlens.sessions.service import search_sessions, sessions_for_customer

    await seed(db, site_key, "one", days=0)
    by_email = await search_sessions(db, parse_query("Jane@Acme.io"), settings, limit=5)
    assert [s.clarity_session_id for s in by_email] == ["one"]
    assert [s.clarity_session_id for s in await sessions_for_customer(db, JANE, settings, limit=5)] == ["one"]
    assert await search_sessions(db, parse_query("+1 415 555 2671"), settings, limit=5) == []


async def test_panel_sorts_and_filters_on_the_server(signed_in, db, site_key):
    """Sort by trouble, filter by signals, link confidence and date; each row says what it is."""
    import re

    quiet = [event("navigation", at=ago(days=1.5, seconds=60), url=f"{ORIGIN}/")]
    await seed(db, site_key, "calm", days=1.5, events=quiet)
    await seed(db, site_key, "rough", days=2.5)  # an error, a rage and a dead click
    noisy = [
        event("navigation", at=ago(days=4.5, seconds=60), url=f"{ORIGIN}/"),
        *(event("error", at=ago(days=4.5, seconds=50 - i), data={"message": f"e{i}"}) for i in range(4)),
    ]
    await seed(db, site_key, "noisy", days=4.5, events=noisy)
    agent = await signed_in("agent")

    async def order(**params: Any) -> list[str]:
        r = await agent.client.get("/partials/sessions", params={"customer": JANE, **params})
        assert r.status_code == 200, r.text
        starts = re.findall(r'data-start="([^"]+)"', r.text)
        troubles = re.findall(r'data-trouble="(\d+)"', r.text)
        return [f"{s[:10]}:{t}" for s, t in zip(starts, troubles, strict=True)]

    newest = await order()
    assert [x.split(":")[1] for x in newest] == ["0", "3", "4"]
    assert [x.split(":")[1] for x in await order(sort="oldest")] == ["4", "3", "0"]
    assert [x.split(":")[1] for x in await order(sort="signals")] == ["4", "3", "0"]
    assert [x.split(":")[1] for x in await order(signals="calm")] == ["0"]
    assert [x.split(":")[1] for x in await order(signals="rage")] == ["3"]
    assert [x.split(":")[1] for x in await order(signals="trouble", sort="newest")] == ["3", "4"]
    assert len(await order(confidence=90)) == 3  # signed in: 100 % sure
    day = ago(days=2.5).date().isoformat()
    assert [x.split(":")[1] for x in await order(**{"from": day, "to": day})] == ["3"]
    paged = await agent.client.get(
        "/partials/sessions", params={"customer": JANE, "sort": "signals", "limit": 2}
    )
    more = re.search(r'hx-get="([^"]+offset=2[^"]*)"', paged.text)
    assert more, paged.text
    rest = await agent.client.get(more.group(1).replace("&amp;", "&"))
    assert re.findall(r'data-trouble="(\d+)"', rest.text) == ["0"] and "Show more" not in rest.text
    empty = await agent.client.get(
        "/partials/sessions", params={"customer": JANE, "signals": "dead", "from": day}
    )
    assert "No session matches these filters." not in empty.text  # the rough session has a dead click
    none = await agent.client.get(
        "/partials/sessions", params={"customer": JANE, "signals": "dead", "to": "2001-01-01"}
    )
    assert "No session matches these filters." in none.text


async def test_panel_hostile_params_name_the_field(signed_in):
    agent = await signed_in("agent")
    for params, field in (
        ({"sort": "price; DROP TABLE x"}, "sort"),
        ({"signals": "<script>"}, "signals"),
        ({"confidence": "101"}, "confidence"),
        ({"confidence": "nan"}, "confidence"),
        ({"from": "0000-01-01"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "to"),
        ({"offset": "100000"}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "9999"}, "limit"),
    ):
        r = await agent.client.get("/partials/sessions", params={"customer": JANE, **params})
        assert r.status_code == 400, (params, r.status_code)
        assert r.json()["field"] == field, (params, r.json())
