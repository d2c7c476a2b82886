"""The weekly report: one ISO week (Monday 00:00 to Monday 00:00 UTC) of issues, frustration and
conversions, from stored data.

- Top issues by customers affected: distinct customers among the sessions that met the issue in
  the week (a session's own customer, else its most confident mapping; a session with neither
  counts as one customer).
- New issues (first seen in the week) and regressed ones (the system reopened them in the week).
- Frustration by page: rage and dead clicks per page template (the issues' five-minute counts).
- Conversions: sessions of the week that reached each conversion goal, out of all sessions.

CSV and JSON carry the same rows; CSV cells that a spreadsheet would run as a formula are
neutralised. Issue titles are normalised already (placeholders, no customer data); viewers get
them through the PII masker all the same.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.integrations.dwolla import return_codes
from supportlens.sessions.analytics import list_goals
from supportlens.web.csv import csv_cell
from supportlens.web.viewer import Pii

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
TOP = 20


class WeekError(ValueError):
    pass


def parse_week(raw: str) -> tuple[str, datetime, datetime]:
    """`YYYY-Www` -> (label, start, end) in UTC."""
    match = WEEK_RE.match(raw)
    if not match:
        raise WeekError("give the week as YYYY-Www, e.g. 2026-W49")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise WeekError(f"{raw} is not a week of {year}") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    return f"{year}-W{week:02d}", start, start + timedelta(days=7)


def week_of(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class IssueRow:
    id: int
    title: str
    kind: str
    page: str
    status: str
    customers: int
    sessions: int


@dataclass(frozen=True)
class PageRow:
    page: str
    rage_clicks: int
    dead_clicks: int


@dataclass(frozen=True)
class GoalRow:
    goal: str
    sessions: int
    rate: float


@dataclass(frozen=True)
class FailedPaymentRow:
    """Failed transfers of one ACH return code, and how many came right after session trouble."""

    failure_code: str
    meaning: str
    transfers: int
    after_session_trouble: int  # an error, rage or dead click of the customer in the 30 minutes before


@dataclass(frozen=True)
class WeeklyReport:
    week: str
    start: datetime
    end: datetime
    sessions: int
    top_issues: list[IssueRow]
    new_issues: list[IssueRow]
    regressed_issues: list[IssueRow]
    frustration: list[PageRow]
    conversions: list[GoalRow]
    failed_payments: list[FailedPaymentRow]

    @property
    def last_day(self) -> datetime:
        return self.end - timedelta(days=1)


_CUSTOMER = (
    "COALESCE(us.customer_email, (SELECT m.customer_email FROM session_customer_mapping m "
    "WHERE m.session_id = us.id ORDER BY m.confidence_score DESC LIMIT 1), us.id::text)"
)

_ISSUES = """
SELECT i.id, i.title, i.kind, i.page, i.status,
       count(DISTINCT {customer}) AS customers, count(DISTINCT us.id) AS sessions
FROM issues i
JOIN issue_occurrences o ON o.issue_id = i.id AND o.occurred_at >= :start AND o.occurred_at < :end
JOIN user_sessions us ON us.id = o.session_id
{where}
GROUP BY i.id ORDER BY customers DESC, sessions DESC, i.id LIMIT :top
"""


_GOAL_SESSIONS = (
    "SELECT count(DISTINCT us.id) FROM user_sessions us JOIN session_events e ON e.session_id = us.id "
    "WHERE us.session_start >= :start AND us.session_start < :end AND "
)
_GOAL_URL = _GOAL_SESSIONS + "e.event_type = 'navigation' AND e.page_url LIKE :value ESCAPE '\\'"
_GOAL_EVENT = _GOAL_SESSIONS + (
    "e.event_type = 'custom' "
    "AND COALESCE(e.event_data->>'name', e.event_data->>'event', e.event_data->>'key') = :value"
)


async def _issue_rows(db: AsyncSession, start: datetime, end: datetime, where: str = "") -> list[IssueRow]:
    rows = await db.execute(
        text(_ISSUES.format(customer=_CUSTOMER, where=where)), {"start": start, "end": end, "top": TOP}
    )
    return [IssueRow(**dict(r._mapping)) for r in rows]


async def build(db: AsyncSession, week: str) -> WeeklyReport:
    label, start, end = parse_week(week)
    top = await _issue_rows(db, start, end)
    new = await _issue_rows(db, start, end, "WHERE i.first_seen >= :start AND i.first_seen < :end")
    regressed = await _issue_rows(
        db,
        start,
        end,
        "WHERE EXISTS (SELECT 1 FROM issue_status_changes c WHERE c.issue_id = i.id "
        "AND c.to_status = 'regressed' AND c.changed_at >= :start AND c.changed_at < :end)",
    )
    frustration = [
        PageRow(r.page, int(r.rage or 0), int(r.dead or 0))
        for r in await db.execute(
            text(
                "SELECT b.page, sum(b.count) FILTER (WHERE i.kind = 'rage_click') AS rage, "
                "sum(b.count) FILTER (WHERE i.kind = 'dead_click') AS dead "
                "FROM issue_buckets b JOIN issues i ON i.id = b.issue_id "
                "WHERE b.bucket_start >= :start AND b.bucket_start < :end "
                "AND i.kind IN ('rage_click', 'dead_click') "
                "GROUP BY b.page ORDER BY sum(b.count) DESC, b.page LIMIT :top"
            ),
            {"start": start, "end": end, "top": TOP},
        )
    ]
    sessions = int(
        await db.scalar(
            text("SELECT count(*) FROM user_sessions WHERE session_start >= :start AND session_start < :end"),
            {"start": start, "end": end},
        )
        or 0
    )
    conversions: list[GoalRow] = []
    for goal in await list_goals(db):
        if goal.kind == "url":
            pattern = "%" + goal.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = _GOAL_URL
        else:
            pattern, query = goal.value, _GOAL_EVENT
        n = int(await db.scalar(text(query), {"start": start, "end": end, "value": pattern}) or 0)
        conversions.append(GoalRow(goal.label or goal.value, n, n / sessions if sessions else 0.0))
    # Failed payments Dwolla told us of (its webhooks make one Needs-attention case per transfer, with
    # the customer's session moment before the failure when there was one).
    failed_payments = []
    for r in await db.execute(
        text(
            "SELECT COALESCE(failure_code, '') AS code, count(*) AS transfers, "
            "count(*) FILTER (WHERE moment_session_id IS NOT NULL) AS after_trouble "
            "FROM attention_cases WHERE failed_at >= :start AND failed_at < :end "
            "GROUP BY 1 ORDER BY count(*) DESC, COALESCE(failure_code, '') = '', 1"
        ),
        {"start": start, "end": end},
    ):
        described = return_codes.describe(r.code or None)
        meaning = described.plain if described else "the payment failed (Dwolla gave no return code)"
        failed_payments.append(
            FailedPaymentRow(r.code or "—", meaning, int(r.transfers), int(r.after_trouble))
        )
    return WeeklyReport(
        label, start, end, sessions, top, new, regressed, frustration, conversions, failed_payments
    )


def as_seen(report: WeeklyReport, viewer: bool) -> WeeklyReport:
    """The report as `viewer` may see it: issue titles are free text (web/viewer.py's rule)."""
    if not viewer:
        return report

    def m(rows: list[IssueRow]) -> list[IssueRow]:
        return [IssueRow(**{**asdict(r), "title": Pii.text.shown(r.title)}) for r in rows]

    return WeeklyReport(
        report.week,
        report.start,
        report.end,
        report.sessions,
        m(report.top_issues),
        m(report.new_issues),
        m(report.regressed_issues),
        report.frustration,
        report.conversions,
        report.failed_payments,
    )


def as_json(report: WeeklyReport) -> dict[str, Any]:
    data = asdict(report)
    data["start"], data["end"] = report.start.isoformat(), report.end.isoformat()
    return data


def as_csv(report: WeeklyReport) -> str:
    """One table: a `section` column, then the section's own columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def row(values: list[Any]) -> None:
        writer.writerow([csv_cell(v) for v in values])

    row(["section", "id", "title", "kind", "page", "status", "customers", "sessions"])
    for section, rows in (
        ("top_issue", report.top_issues),
        ("new_issue", report.new_issues),
        ("regressed_issue", report.regressed_issues),
    ):
        for r in rows:
            row([section, r.id, r.title, r.kind, r.page, r.status, r.customers, r.sessions])
    row([])
    row(["section", "page", "rage_clicks", "dead_clicks"])
    for p in report.frustration:
        row(["frustration", p.page, p.rage_clicks, p.dead_clicks])
    row([])
    row(["section", "goal", "sessions", "rate"])
    for g in report.conversions:
        row(["conversion", g.goal, g.sessions, f"{g.rate:.4f}"])
    row([])
    row(["section", "return_code", "meaning", "transfers", "after_session_trouble"])
    for f in report.failed_payments:
        row(["failed_payment", f.failure_code, f.meaning, f.transfers, f.after_session_trouble])
    return buf.getvalue()


async def enqueue_weekly_delivery(db: AsyncSession, base_url: str, *, now: datetime | None = None) -> bool:
    """The link to last week's report, to the alerts webhook: once per week (the delivery's dedup
    key is the week), however often the schedule runs. Commits. False when already queued."""
    from supportlens.issues.alerts import enqueue

    now = now or datetime.now(tz=UTC)
    week = week_of(now - timedelta(days=7))
    link = f"{base_url.rstrip('/')}/reports/weekly?week={week}"
    queued = await enqueue(
        db,
        kind="weekly",
        dedup_key=f"weekly:{week}",
        payload={"text": f"Weekly report {week}: {link}", "kind": "weekly", "week": week, "url": link},
    )
    await db.commit()
    return queued
