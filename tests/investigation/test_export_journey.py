"""Streaming exports (CSV injection neutralised), the customer journey and customer analytics."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.audit.service import customer_ref
from supportlens.investigation import export as exports
from supportlens.investigation import journey
from supportlens.sessions import analytics
from supportlens.sessions.models import SessionEvent
from supportlens.web.csv import csv_cell
from tests.investigation.seed import SHOP, ev, seed_checkout_session


async def test_session_export_streams_json_and_csv_in_pages(signed_in, sessionmaker, db, monkeypatch):
    seeded = await seed_checkout_session(sessionmaker)
    # hostile text: a spreadsheet formula in a click's text and in a selector
    db.add(ev(seeded.id, seeded.session.session_start, 200, "click", f"{SHOP}/pay", x=1, y=2,
              selector="@SUM(A1)", data={"text": "=HYPERLINK(\"http://evil\")"}))  # fmt: skip
    await db.commit()
    monkeypatch.setattr(exports, "EXPORT_PAGE", 4)  # several keyset pages for 15 events
    agent = await signed_in("agent")
    r = await agent.client.get(f"/api/clarity/sessions/{seeded.id}/export", params={"format": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    body = json.loads(r.text)
    assert body["session"]["id"] == str(seeded.id)
    assert len(body["events"]) == 15
    assert len({e["id"] for e in body["events"]}) == 15
    assert [e["offset_ms"] for e in body["events"]] == sorted(e["offset_ms"] for e in body["events"])
    err = next(e for e in body["events"] if e["type"] == "error")
    assert err["message"].startswith("TypeError")

    r = await agent.client.get(f"/api/clarity/sessions/{seeded.id}/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 15
    evil = next(row for row in rows if row["selector"].endswith("SUM(A1)"))
    assert evil["selector"] == "'@SUM(A1)"
    assert evil["text"] == '\'=HYPERLINK("http://evil")'
    assert {row["type"] for row in rows} >= {"navigation", "click", "error", "rage_click", "dead_click"}
    audits = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "session_exported"))).all()
    assert sorted(a.detail["format"] for a in audits) == ["csv", "json"]


async def test_customer_export_and_roles(signed_in, sessionmaker, db, monkeypatch, settings):
    start = datetime.now(UTC) - timedelta(days=3)
    for i in range(5):
        await seed_checkout_session(
            sessionmaker, clarity_session_id=f"c{i}", start=start - timedelta(hours=i)
        )
    monkeypatch.setattr(exports, "EXPORT_PAGE", 2)
    agent = await signed_in("agent")
    r = await agent.client.get("/api/customers/Jane@Acme.io/export", params={"format": "csv"})
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["clarity_session_id"] for row in rows] == ["c0", "c1", "c2", "c3", "c4"]  # newest first
    assert rows[0]["entry_url"] == f"{SHOP}/"
    r = await agent.client.get("/api/customers/jane@acme.io/export", params={"format": "json"})
    data = json.loads(r.text)
    assert data["customer"] == "jane@acme.io" and len(data["sessions"]) == 5
    r = await agent.client.get("/api/customers/jane@acme.io/export", params={"format": "xml"})
    assert r.status_code == 400 and r.json()["field"] == "format"
    viewer = await signed_in("viewer")
    assert (await viewer.client.get("/api/customers/jane@acme.io/export")).status_code == 403
    audit = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "customer_exported"))).all()
    assert len(audit) == 2
    assert {a.target for a in audit} == {customer_ref("jane@acme.io", settings)}
    assert all("jane" not in json.dumps(a.detail) for a in audit)


def test_csv_cells_are_neutralised():
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert csv_cell(value) == "'" + value
    assert csv_cell("plain") == "plain"
    assert csv_cell(-5) == -5  # numbers stay numbers


def test_active_time_leaves_out_idle_gaps():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = [t0, t0 + timedelta(seconds=10), t0 + timedelta(seconds=40), t0 + timedelta(seconds=71)]
    assert analytics.active_seconds(stamps) == 40  # 10 + 30; the 31 s gap is idle


def test_correlation_pairs_errors_and_failed_transfers_within_30_minutes():
    items = [
        {
            "at": "2026-11-18T10:41:00+00:00",
            "kind": "error",
            "title": "JavaScript error on /pay",
            "sessionId": "s",
        },
        {"at": "2026-11-18T10:42:00+00:00", "kind": "transfer_failed", "title": "Transfer of $225.00 failed"},
        {"at": "2026-11-18T12:00:00+00:00", "kind": "error", "title": "JavaScript error on /later"},
    ]
    pairs = journey.correlate(items)
    assert len(pairs) == 1 and pairs[0]["minutesApart"] == 1
    assert items[0]["badges"] == ["Transfer of $225.00 failed at 10:42"]
    assert items[1]["badges"] == ["JavaScript error on /pay at 10:41"]
    assert "badges" not in items[2]


async def test_journey_from_sessions_with_vendors_not_configured(signed_in, sessionmaker, db, settings):
    seeded = await seed_checkout_session(sessionmaker)
    agent = await signed_in("agent")
    r = await agent.client.get("/api/customers/jane@acme.io/journey")
    assert r.status_code == 200
    j = r.json()
    assert j["sources"]["sessions"]["status"] == "ok"
    assert j["sources"]["dwolla"]["status"] == "not_configured"
    assert j["sources"]["hubspot"]["status"] == "not_configured"
    kinds = [i["kind"] for i in j["items"]]
    assert (
        kinds[0] == "session_start"
        and "error" in kinds
        and "rage_click" in kinds
        and kinds.count("page") == 3
    )
    assert [i["at"] for i in j["items"]] == sorted(i["at"] for i in j["items"])
    err = next(i for i in j["items"] if i["kind"] == "error")
    assert err["link"] == f"/sessions/{seeded.id}?t=300500"
    # filters: by source and by date
    j2 = (await agent.client.get("/api/customers/jane@acme.io/journey", params={"sources": "dwolla"})).json()
    assert j2["items"] == [] and j2["sources"]["sessions"]["status"] == "skipped"
    day = seeded.session.session_start.date()
    later = (day + timedelta(days=1)).isoformat()
    j3 = (await agent.client.get("/api/customers/jane@acme.io/journey", params={"from": later})).json()
    assert j3["items"] == []
    j4 = (
        await agent.client.get(
            "/api/customers/jane@acme.io/journey", params={"from": day.isoformat(), "to": day.isoformat()}
        )
    ).json()
    assert len(j4["items"]) == len(j["items"])
    for params, field in (
        ({"sources": "ebay"}, "sources"),
        ({"from": "yesterday"}, "from"),
        ({"from": later, "to": day.isoformat()}, "to"),
    ):
        bad = await agent.client.get("/api/customers/jane@acme.io/journey", params=params)
        assert bad.status_code == 400 and bad.json()["field"] == field, params
    # the page shows the vendors' absence and the stream
    html = (await agent.client.get("/customers/jane@acme.io/journey", headers={"Accept": "text/html"})).text
    assert 'data-source-note="dwolla"' in html and "JavaScript error on /pay" in html
    audit = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "customer_journey_viewed"))).all()
    assert len(audit) == 5 and audit[0].target == customer_ref("jane@acme.io", settings)


async def test_journey_with_the_dwolla_and_hubspot_simulators(
    signed_in, sessionmaker, settings_factory, engine
):
    """Jane's $225 R01 failure (demo world) sits beside a JavaScript error a minute earlier; HubSpot adds
    her contact, deal and ticket; then HubSpot failing leaves a note and the rest of the stream."""
    import httpx2

    from supportlens.app import create_app
    from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
    from supportlens_sandbox.hubspot import HUBSPOT_TOKEN, create_hubspot_app
    from supportlens_sandbox.world import demo_world
    from tests.support.agents import make_agent, sign_in
    from tests.support.live import LiveServer

    world = demo_world()
    jane = next(c for c in world.customers if c.email == "jane@acme.io")
    failed = jane.failed_transfers[0]
    start = failed.created - timedelta(seconds=360.5)  # the seeded error is at +300.5 s: 1 min before
    await seed_checkout_session(sessionmaker, start=start)
    agent = await make_agent(sessionmaker, "agent", email="dw@example.com")

    async def journey(hubspot_token: str) -> dict:
        settings = settings_factory(
            dwolla_base_url=dw.url,
            dwolla_key=DWOLLA_KEY,
            dwolla_secret=DWOLLA_SECRET,
            hubspot_base_url=hs.url,
            hubspot_token=hubspot_token,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50002))
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
                await sign_in(c, agent.email)
                return (await c.get("/api/customers/jane@acme.io/journey")).json()

    with LiveServer(create_dwolla_app(world)) as dw, LiveServer(create_hubspot_app(world)) as hs:
        j = await journey(HUBSPOT_TOKEN)
        broken = await journey("pat-wrong-token")
    assert j["sources"]["dwolla"]["status"] == "ok", j["sources"]
    assert j["sources"]["hubspot"]["status"] == "ok", j["sources"]
    fail = next(i for i in j["items"] if i["kind"] == "transfer_failed")
    assert fail["returnCode"] == "R01" and fail["title"] == "Transfer of $225.00 failed"
    assert "R01" in fail["detail"]
    assert len(j["correlations"]) == 1 and j["correlations"][0]["minutesApart"] == 1
    err = next(i for i in j["items"] if i["kind"] == "error")
    assert err["badges"] and fail["badges"]
    kinds = {i["kind"] for i in j["items"]}
    assert {
        "transfer_processed",
        "funding_source_added",
        "session_start",
        "contact_created",
        "ticket",
    } <= kinds
    ticket = next(i for i in j["items"] if i["kind"] == "ticket")
    assert "insufficient funds" in ticket["title"].lower()
    # HubSpot refusing the token: its part is missing, with a note; Dwolla and sessions still there
    assert broken["sources"]["hubspot"]["status"] == "error" and broken["sources"]["hubspot"]["note"]
    assert broken["sources"]["dwolla"]["status"] == "ok"
    assert {"transfer_failed", "error"} <= {i["kind"] for i in broken["items"]}
    assert not any(i["source"] == "hubspot" for i in broken["items"])


async def test_customer_analytics_api_and_page(signed_in, sessionmaker):
    start = datetime.now(UTC) - timedelta(days=3)
    await seed_checkout_session(sessionmaker, start=start)
    await seed_checkout_session(
        sessionmaker, clarity_session_id="m1", start=start - timedelta(days=1), device="mobile"
    )
    agent = await signed_in("agent")
    data = (await agent.client.get("/api/customers/jane@acme.io/analytics")).json()
    assert data["sessionCount"] == 2
    assert {d["device"]: d["sessions"] for d in data["devices"]} == {"desktop": 1, "mobile": 1}
    assert data["topPages"][0]["views"] == 2
    assert data["totals"] == {"errors": 2, "rageClicks": 2, "deadClicks": 6}
    assert [d["sessions"] for d in data["days"]] == [1, 1]
    html = (await agent.client.get("/customers/jane@acme.io/analytics", headers={"Accept": "text/html"})).text
    assert 'data-chart="sessions"' in html and "customer-analytics-data" in html
    viewer = await signed_in("viewer")
    html = (await viewer.client.get("/customers/jane@acme.io/analytics")).text
    assert "jane@acme.io" not in html and "j***@acme.io" in html
    assert "export?format" not in html


async def test_admin_sets_conversion_goals(signed_in, db):
    admin = await signed_in("admin")
    r = await admin.client.get("/admin/goals", headers={"Accept": "text/html"})
    assert r.status_code == 200
    r = await admin.client.post(
        "/admin/goals", data={"kind": "url", "value": "/thank-you", "label": "Paid", "csrf_token": admin.csrf}
    )
    assert r.status_code == 303
    r = await admin.client.post(
        "/admin/goals", data={"kind": "bogus", "value": "x", "csrf_token": admin.csrf}
    )
    assert r.status_code == 400
    goals = await analytics.list_goals(db)
    assert [(g.kind, g.value) for g in goals] == [("url", "/thank-you")]
    agent = await signed_in("agent")
    assert (await agent.client.get("/admin/goals")).status_code == 403
    r = await admin.client.post(f"/admin/goals/{goals[0].id}/delete", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    db.expire_all()
    assert await analytics.list_goals(db) == []


async def test_events_are_paged_not_counted_from_session_row(sessionmaker, db):
    """The heatmap and analytics read events, not the session's counters."""
    seeded = await seed_checkout_session(sessionmaker)
    n = len((await db.scalars(select(SessionEvent).where(SessionEvent.session_id == seeded.id))).all())
    result = await analytics.session_analytics(db, seeded.session)
    assert result.event_count == n
