"""HTTP: the issues API (list, one issue, status changes) and the Issues pages.

Viewers see affected customers masked (as everywhere); opening an issue, which names its customers,
is audited; a status change needs the agent role, is checked against the status model and audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from supportlens.audit import service as audit
from supportlens.auth.deps import AgentPrincipal, CurrentPrincipal, DbDep, Principal, SettingsDep
from supportlens.config import Settings
from supportlens.customers.directory import CustomerDirectory
from supportlens.deps import DirectoryDep
from supportlens.issues import reads, service
from supportlens.issues.models import Issue
from supportlens.issues.reads import IssueRow
from supportlens.issues.service import IssueNotFound, IssueStatusError
from supportlens.issues.transfers import TransfersNear, failed_transfers_near
from supportlens.params import OptionalInstant, RowId
from supportlens.problems import ProblemError
from supportlens.web import viewer
from supportlens.web.pages import render
from supportlens.web.viewer import Pii

router = APIRouter(tags=["issues"])
pages = APIRouter(include_in_schema=False)

Status = Literal["new", "acknowledged", "resolved", "regressed"]
Kind = Literal["error", "rage_click", "dead_click"]
KIND_LABELS = {"error": "Error", "rage_click": "Rage clicks", "dead_click": "Dead clicks"}
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
TIMELINE_DAYS = 7
MAX_PAGE = 10_000


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _item(row: IssueRow) -> dict[str, Any]:
    i = row.issue
    return {
        "id": i.id,
        "title": i.title,
        "kind": i.kind,
        "fingerprint": i.fingerprint,
        "firstSeen": _iso(i.first_seen),
        "lastSeen": _iso(i.last_seen),
        "events": i.event_count,
        "sessions": i.session_count,
        "customers": row.customers,
        "failedTransfers": i.failed_transfers,  # as last counted on the issue's page; null: not yet
        "status": i.status,
        "page": i.page,
        "trend": row.trend,
    }


def sparkline(trend: list[int], width: int = 96, height: int = 24) -> str:
    """The polyline points of a sparkline (inline SVG, no script): x across, counts up to the peak."""
    peak = max(trend, default=0) or 1
    step = width / max(1, len(trend) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (n / peak) * (height - 4):.1f}" for i, n in enumerate(trend)
    )


async def _list(
    db: DbDep,
    settings: Settings,
    *,
    status: str | None,
    kind: str | None,
    since: datetime | None,
    page: int,
) -> tuple[list[IssueRow], bool]:
    return await reads.list_issues(
        db,
        status=status,
        kind=kind,
        since=since,
        page=page,
        min_confidence=settings.mapping_min_confidence,
    )


@router.get("/api/issues")
async def api_list(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    status: Annotated[Status | None, Query()] = None,
    kind: Annotated[Kind | None, Query()] = None,
    since: Annotated[OptionalInstant, Query()] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> JSONResponse:
    """Issues with activity since `since`, newest activity first, 25 a page."""
    rows, more = await _list(db, settings, status=status, kind=kind, since=since, page=page)
    return JSONResponse(
        {"items": [_item(r) for r in rows], "page": page, "nextPage": page + 1 if more else None}
    )


@dataclass
class IssueSources:
    """What an issue's detail reads besides the database: the settings, and the customer directory for
    the failed transfers near the issue."""

    settings: Settings
    directory: CustomerDirectory


async def _issue_sources(settings: SettingsDep, directory: DirectoryDep) -> IssueSources:
    return IssueSources(settings, directory)


IssueSourcesDep = Annotated[IssueSources, Depends(_issue_sources)]


async def _issue_or_404(db: DbDep, issue_id: int) -> Issue:
    issue = await db.get(Issue, issue_id)
    if issue is None:
        raise ProblemError(404, "Issue not found", f"no issue {issue_id}", field="id")
    return issue


async def _detail(
    request: Request, db: DbDep, principal: Principal, issue: Issue, sources: IssueSources
) -> dict[str, Any]:
    """Everything the issue page and `GET /api/issues/{id}` show, read once; audited."""
    settings = sources.settings
    now = datetime.now(UTC)
    # The week up to now, or up to its last occurrence when that is older (an old issue's chart is not empty).
    end = now if issue.last_seen >= now - timedelta(days=TIMELINE_DAYS) else issue.last_seen.astimezone(UTC)
    until = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hourly = await service.hourly_counts(
        db, issue.id, since=until - timedelta(days=TIMELINE_DAYS), until=until
    )
    where = await reads.breakdown(db, issue.id)
    examples = await reads.examples(db, issue.id)
    customers = await reads.affected_customers(db, issue.id, min_confidence=settings.mapping_min_confidence)
    counts = await reads.customer_counts(db, [issue.id], min_confidence=settings.mapping_min_confidence)
    history = await service.status_history(db, issue.id)
    near = await failed_transfers_near(
        db,
        sources.directory,
        issue.id,
        customers,
        min_confidence=settings.mapping_min_confidence,
        now=now,
    )
    await audit.record(
        db,
        "issue_viewed",
        request=request,
        actor=principal.agent,
        target_type="issue",
        target=str(issue.id),
        detail={"customers": [audit.customer_ref(c.email, settings) for c in customers[:20]]},
        commit=False,
    )
    await db.commit()
    detail = {
        "id": issue.id,
        "title": issue.title,
        "kind": issue.kind,
        "fingerprint": issue.fingerprint,
        "message": issue.message,
        "page": issue.page,
        "element": issue.element,
        "frames": issue.frames,
        "status": issue.status,
        "allowedStatuses": sorted(service.AGENT_TRANSITIONS[issue.status]),
        "firstSeen": _iso(issue.first_seen),
        "lastSeen": _iso(issue.last_seen),
        "events": issue.event_count,
        "sessions": issue.session_count,
        "customers": counts.get(issue.id, 0),
        "failedTransfers": _transfers_json(near) | {"count": len(near.transfers)},
        "hourly": [{"hour": _iso(h), "count": n} for h, n in hourly],
        "hourlyEndsNow": end is now,
        "pages": [{"page": p, "count": n} for p, n in where["pages"]],
        "browsers": [{"browser": b, "sessions": n} for b, n in where["browsers"]],
        "examples": _examples_json(examples),
        "affectedCustomers": _customers_json(customers),
        "history": [
            {"from": h.from_status, "to": h.to_status, "at": _iso(h.changed_at), "reason": h.reason}
            for h in history
        ],
    }
    return viewer.mask_json(detail, ISSUE_FIELDS, viewer.is_viewer(principal))


def _examples_json(examples: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "sessionId": str(e.session_id),
            "at": _iso(e.occurred_at),
            "offsetMs": e.offset_ms,
            "page": e.page,
            "browser": e.browser,
            "device": e.device,
            "link": f"/sessions/{e.session_id}?t={e.offset_ms}",
        }
        for e in examples
    ]


# What a viewer sees of an issue (web/viewer.py masks these): affected customers' e-mails masked,
# and no link to their journeys.
ISSUE_FIELDS: viewer.Fields = {"email": Pii.email, "customer": Pii.email, "journey": Pii.withheld}


def _customers_json(customers: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "email": c.email,
            "firstSeen": _iso(c.first_seen),
            "lastSeen": _iso(c.last_seen),
            "journey": f"/customers/{quote(c.email, safe='@')}/journey",
        }
        for c in customers
    ]


def _transfers_json(near: TransfersNear) -> dict[str, Any]:
    return {
        "complete": near.complete,
        "asked": near.asked,
        "unanswered": near.unanswered,
        "error": near.error,
        "items": [
            {
                "transferId": t.failure.transfer_id,
                "customer": t.email,
                "at": _iso(t.failure.at),
                "amount": t.failure.amount,
                "currency": t.failure.currency,
                "code": t.failure.code,
                "minutesApart": t.minutes,
            }
            for t in near.transfers
        ],
    }


@router.get("/api/issues/{issue_id}")
async def api_issue(
    request: Request, issue_id: RowId, db: DbDep, principal: CurrentPrincipal, sources: IssueSourcesDep
) -> JSONResponse:
    issue = await _issue_or_404(db, issue_id)
    return JSONResponse(await _detail(request, db, principal, issue, sources))


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    reason: str | None = Field(default=None, max_length=1000)


async def _change_status(
    request: Request, db: DbDep, principal: Principal, issue_id: int, to: str, reason: str | None
) -> Issue:
    try:
        issue = await service.set_status(
            db, issue_id, to, agent=principal.agent, reason=reason, request=request
        )
    except IssueNotFound:
        raise ProblemError(404, "Issue not found", f"no issue {issue_id}", field="id") from None
    except IssueStatusError as exc:
        await db.rollback()
        raise ProblemError(409, "Status change not allowed", str(exc), field="status") from None
    await db.commit()
    return issue


@router.patch("/api/issues/{issue_id}")
async def api_set_status(
    request: Request,
    issue_id: RowId,
    db: DbDep,
    principal: AgentPrincipal,
    change: Annotated[StatusChange, Body()],
) -> JSONResponse:
    """Acknowledge or resolve an issue (or reopen a resolved one); 409 naming `status` when not allowed."""
    issue = await _change_status(request, db, principal, issue_id, change.status, change.reason)
    return JSONResponse(
        {"id": issue.id, "status": issue.status, "statusChangedAt": _iso(issue.status_changed_at)}
    )


# ---- pages -----------------------------------------------------------------------------------------


@pages.get("/issues", response_class=HTMLResponse)
async def issues_page(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    status: Annotated[Status | Literal[""] | None, Query()] = None,
    kind: Annotated[Kind | Literal[""] | None, Query()] = None,
    window: Annotated[Literal["24h", "7d", "30d", "all"], Query()] = "7d",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
) -> HTMLResponse:
    span = WINDOWS[window]
    since = datetime.now(UTC) - span if span else None
    rows, more = await _list(db, settings, status=status or None, kind=kind or None, since=since, page=page)
    filters = {"status": status or "", "kind": kind or "", "window": window}

    def page_link(n: int) -> str:
        return "/issues?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": n})

    return render(
        request,
        "issues/list.html",
        {
            "rows": [{"item": _item(r), "points": sparkline(r.trend), "peak": max(r.trend)} for r in rows],
            "filters": filters,
            "page": page,
            "prev_link": page_link(page - 1) if page > 1 else None,
            "next_link": page_link(page + 1) if more else None,
            "kind_labels": KIND_LABELS,
        },
    )


@pages.get("/issues/{issue_id}", response_class=HTMLResponse)
async def issue_page(
    request: Request, issue_id: RowId, db: DbDep, principal: CurrentPrincipal, sources: IssueSourcesDep
) -> HTMLResponse:
    issue = await _issue_or_404(db, issue_id)
    detail = await _detail(request, db, principal, issue, sources)
    total_week = sum(h["count"] for h in detail["hourly"])
    busiest = max(detail["hourly"], key=lambda h: h["count"], default=None)
    return render(
        request,
        "issues/issue.html",
        {
            "issue": detail,
            "kind_labels": KIND_LABELS,
            "total_week": total_week,
            "busiest": busiest if busiest and busiest["count"] else None,
            "chart": {
                "hours": [h["hour"] for h in detail["hourly"]],
                "counts": [h["count"] for h in detail["hourly"]],
            },
            "can_change": not viewer.is_viewer(principal),
        },
    )


@pages.post("/issues/{issue_id}/status")
async def issue_status_form(
    request: Request,
    issue_id: RowId,
    db: DbDep,
    principal: AgentPrincipal,
    status: Annotated[Status, Form()],
    reason: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    await _change_status(request, db, principal, issue_id, status, reason or None)
    return RedirectResponse(f"/issues/{issue_id}", status_code=303)


router.include_router(pages)
