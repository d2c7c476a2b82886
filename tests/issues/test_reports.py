"""The weekly report: contents from stored data, CSV/JSON (formula cells neutralised), the week
parameter refused with its name, viewers masked, and the weekly link queued once per week."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from supportlens.audit.models import AuditEntry
from supportlens.issues import reports
from supportlens.issues.alert_models import AlertDelivery
from supportlens.issues.models import Issue, IssueBucket, IssueOccurrence, IssueStatusChange
from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import SessionEvent, UserSession

WEEK = "2026-W48"  # Monday 23 November 2026
MON = datetime(2026, 11, 23, tzinfo=UTC)


async def _session(db, email: str | None, at: datetime, pages: list[str]) -> uuid.UUID:
    sid = uuid.uuid4()
    db.add(
        UserSession(
            id=sid,
            clarity_project_id="p",
            clarity_user_id="u",
            clarity_session_id=sid.hex[:12],
            customer_email=email,
            session_start=at,
            session_end=at + timedelta(minutes=3),
            entry_url=f"https://shop.example{pages[0]}",
        )
    )
    await db.flush()
    for i, p in enumerate(pages):
        db.add(
            SessionEvent(
                id=uuid.uuid4(),
                session_id=sid,
                event_type="navigation",
                event_data={},
                timestamp=at + timedelta(seconds=i),
                page_url=f"https://shop.example{p}",
            )
        )
    return sid


async def _issue(
    db, title: str, kind: str, first_seen: datetime, occurrences: list[tuple[uuid.UUID, datetime]]
):
    issue = Issue(
        fingerprint=f"fp-{title}"[:64],
        kind=kind,
        title=title,
        page="/pay",
        first_seen=first_seen,
        last_seen=first_seen,
        status="new",
    )
    db.add(issue)
    await db.flush()
    for sid, at in occurrences:
        db.add(
            IssueOccurrence(
                event_id=uuid.uuid4(), issue_id=issue.id, session_id=sid, occurred_at=at, page="/pay"
            )
        )
    return issue


@pytest.fixture
async def seeded(db):
    t = MON + timedelta(days=2, hours=10)
    ann1 = await _session(db, "ann@example.com", t, ["/cart", "/pay", "/thanks"])
    ann2 = await _session(db, "ann@example.com", t + timedelta(hours=1), ["/cart", "/pay"])
    bob = await _session(db, "bob@example.com", t + timedelta(hours=2), ["/cart", "/pay"])
    anon = await _session(db, None, t + timedelta(hours=3), ["/cart"])
    before = await _session(db, "cy@example.com", MON - timedelta(days=3), ["/cart", "/thanks"])  # last week
    wide = await _issue(
        db,
        '=HYPERLINK("http://evil") TypeError at /pay',
        "error",
        MON - timedelta(days=30),
        [(ann1, t), (ann2, t), (bob, t), (anon, t)],
    )
    narrow = await _issue(
        db, "Card declined for ann@example.com", "error", MON + timedelta(days=1), [(ann1, t), (ann2, t)]
    )
    old = await _issue(db, "Old one", "error", MON - timedelta(days=40), [(before, MON - timedelta(days=3))])
    back = await _issue(db, "Came back", "error", MON - timedelta(days=40), [(bob, t)])
    db.add(IssueStatusChange(issue_id=back.id, from_status="resolved", to_status="regressed", changed_at=t))
    rage = await _issue(db, "Rage on pay", "rage_click", MON - timedelta(days=40), [])
    db.add(IssueBucket(issue_id=rage.id, page="/pay", bucket_start=t, count=7))
    db.add(
        IssueBucket(issue_id=rage.id, page="/pay", bucket_start=MON - timedelta(days=1), count=100)
    )  # not this week
    db.add(ConversionGoal(kind="url", value="/thanks", label="Paid"))
    await db.commit()
    return {"wide": wide.id, "narrow": narrow.id, "old": old.id, "back": back.id}


async def test_report_contents(db, seeded):
    r = await reports.build(db, WEEK)
    assert (r.start, r.end) == (MON, MON + timedelta(days=7))
    assert r.sessions == 4
    top = [(i.id, i.customers, i.sessions) for i in r.top_issues]
    # ann's two sessions are one customer; the session without a customer counts as one.
    assert top == [(seeded["wide"], 3, 4), (seeded["narrow"], 1, 2), (seeded["back"], 1, 1)]
    assert [i.id for i in r.new_issues] == [seeded["narrow"]]
    assert [i.id for i in r.regressed_issues] == [seeded["back"]]
    assert [(p.page, p.rage_clicks, p.dead_clicks) for p in r.frustration] == [("/pay", 7, 0)]
    assert [(g.goal, g.sessions) for g in r.conversions] == [("Paid", 1)]
    assert r.conversions[0].rate == pytest.approx(0.25)


def test_week_parsing():
    assert reports.parse_week("2026-W01")[1] == datetime(2025, 12, 29, tzinfo=UTC)
    for bad in ("2026-W54", "2026-53", "2026W05", "2026-W5", "x" * 10, "2025-W53"):
        with pytest.raises(reports.WeekError):
            reports.parse_week(bad)


async def test_csv_json_and_page(signed_in, seeded, sessionmaker):
    agent = await signed_in("agent")
    resp = await agent.client.get(f"/reports/weekly.csv?week={WEEK}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    cells = [c for row in csv.reader(io.StringIO(resp.text)) for c in row]
    assert '\'=HYPERLINK("http://evil") TypeError at /pay' in cells  # neutralised, not run
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    data = (await agent.client.get(f"/reports/weekly.json?week={WEEK}")).json()
    assert data["week"] == WEEK and data["top_issues"][0]["customers"] == 3
    assert data["top_issues"][0]["title"].startswith("=HYPERLINK")  # JSON carries the text as it is
    page = await agent.client.get(f"/reports/weekly?week={WEEK}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert (
        "=HYPERLINK(&#34;http://evil&#34;)" in page.text or "=HYPERLINK(&quot;http://evil&quot;)" in page.text
    )
    bad = await agent.client.get("/reports/weekly.json?week=2026-W99")
    assert bad.status_code == 400 and bad.json()["field"] == "week"
    long = await agent.client.get("/reports/weekly.json?week=" + "9" * 50)
    assert long.status_code in (400, 422) and "week" in long.text
    async with sessionmaker() as db:
        n = await db.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "weekly_report_viewed")
        )
        assert n >= 3


async def test_viewers_get_titles_masked(signed_in, seeded):
    viewer = await signed_in("viewer")
    data = (await viewer.client.get(f"/reports/weekly.json?week={WEEK}")).json()
    titles = [i["title"] for i in data["top_issues"]]
    assert not any("ann@example.com" in t for t in titles)
    page = await viewer.client.get(f"/reports/weekly?week={WEEK}", headers={"Accept": "text/html"})
    assert "ann@example.com" not in page.text


async def test_weekly_link_is_queued_once_per_week(db):
    now = datetime(2026, 12, 7, 6, 7, tzinfo=UTC)
    assert await reports.enqueue_weekly_delivery(db, "https://lens.example", now=now)
    assert not await reports.enqueue_weekly_delivery(
        db, "https://lens.example", now=now + timedelta(minutes=5)
    )
    rows = (await db.scalars(select(AlertDelivery))).all()
    assert len(rows) == 1 and rows[0].payload["url"] == "https://lens.example/reports/weekly?week=2026-W49"


async def test_failed_payments_and_those_after_session_trouble(db, signed_in):
    """From the Needs-attention cases Dwolla's webhooks made: per return code, and how many followed an
    error, rage or dead click of the customer."""
    from supportlens.attention.models import AttentionCase

    t = MON + timedelta(days=1, hours=9)
    sid = await _session(db, "ann@example.com", t - timedelta(minutes=5), ["/pay"])
    for n, (code, moment, at) in enumerate(
        [
            ("R01", sid, t),
            ("R01", None, t + timedelta(hours=2)),
            ("R02", sid, t + timedelta(hours=3)),
            ("R01", sid, MON - timedelta(days=2)),  # last week
            (None, None, t + timedelta(hours=4)),
        ]
    ):
        db.add(
            AttentionCase(
                event_id=f"ev{n}",
                topic="customer_transfer_failed",
                transfer_id=f"tr{n}",
                customer_email="ann@example.com",
                amount="80.00",
                failure_code=code,
                failed_at=at,
                moment_session_id=moment,
                moment_kind="error" if moment else None,
            )
        )
    await db.commit()
    r = await reports.build(db, WEEK)
    rows = [(f.failure_code, f.transfers, f.after_session_trouble) for f in r.failed_payments]
    assert rows == [("R01", 2, 1), ("R02", 1, 1), ("—", 1, 0)]
    assert "insufficient funds" in r.failed_payments[0].meaning.lower()
    assert "ann@example.com" not in str(reports.as_json(r))  # the report names no customer
    agent = await signed_in("agent")
    page = await agent.client.get(f"/reports/weekly?week={WEEK}")
    assert page.status_code == 200 and 'data-testid="failed-payments"' in page.text
    csv_text = (await agent.client.get(f"/reports/weekly.csv?week={WEEK}")).text
    assert "failed_payment,R01," in csv_text
