"""/issues/{id}/compare and /sessions/{id}/compare: a failing session beside one that completed the
same flow (same start page, a conversion goal reached), as steps, the first divergence marked.

A match is a recent session that entered on the same page template, reached a conversion goal (the
goal the first session reached, if it reached one) and is not one of the issue's sessions. The agent
can pick another with `?with=<session id>`. Viewing a comparison is a view of both sessions: each is
audited; viewers see the step labels with customer data masked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit import service as audit
from supportlens.auth.deps import CurrentPrincipal, DbDep, SettingsDep
from supportlens.config import Settings
from supportlens.issues import compare
from supportlens.issues.fingerprint import template_path
from supportlens.issues.models import Issue
from supportlens.params import RowId
from supportlens.problems import ProblemError
from supportlens.sessions import analytics
from supportlens.sessions import reads as svc
from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import SessionEvent, UserSession
from supportlens.web.pages import render
from supportlens.web.viewer import Pii, is_viewer

router = APIRouter(tags=["issues"], include_in_schema=False)

MAX_EVENTS = 5000  # per session: the steps of a very long session are cut, not the page
CANDIDATE_POOL = 500  # recent sessions looked at for a match
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Candidate:
    session: UserSession
    goal: str


async def _steps(db: AsyncSession, session_id: uuid.UUID) -> list[compare.Step]:
    events = (
        await db.scalars(
            select(SessionEvent)
            .where(SessionEvent.session_id == session_id, SessionEvent.event_type.in_(compare.KEY_EVENTS))
            .order_by(SessionEvent.timestamp, SessionEvent.id)
            .limit(MAX_EVENTS)
        )
    ).all()
    return compare.steps(events)


def _as_seen(steps: list[compare.Step], viewer: bool) -> list[compare.Step]:
    """Step labels can quote what the customer typed: free text to a viewer (web/viewer.py)."""
    return [replace(s, label=Pii.text.for_viewer(s.label, viewer)) for s in steps]


async def _goals_reached(
    db: AsyncSession, session_id: uuid.UUID, goals: Sequence[ConversionGoal]
) -> list[str]:
    reached = []
    for goal in goals:
        if goal.kind == "url":
            pattern = "%" + goal.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            cond = (SessionEvent.event_type == "navigation") & SessionEvent.page_url.like(
                pattern, escape="\\"
            )
        else:
            name = func.coalesce(
                SessionEvent.event_data["name"].astext,
                SessionEvent.event_data["event"].astext,
                SessionEvent.event_data["key"].astext,
            )
            cond = (SessionEvent.event_type == "custom") & (name == goal.value)
        n = await db.scalar(select(func.count()).where(SessionEvent.session_id == session_id, cond))
        if n:
            reached.append(goal.label or goal.value)
    return reached


async def candidates(
    db: AsyncSession, session: UserSession, exclude: set[uuid.UUID], goals: Sequence[ConversionGoal]
) -> list[Candidate]:
    """Recent sessions that started on the same page and reached a goal (the same goal, if `session`
    reached one), newest first."""
    start = template_path(session.entry_url)
    wanted = set(await _goals_reached(db, session.id, goals))
    pool = (
        await db.scalars(
            select(UserSession)
            .where(UserSession.entry_url.is_not(None), UserSession.id != session.id)
            .order_by(UserSession.session_start.desc())
            .limit(CANDIDATE_POOL)
        )
    ).all()
    found: list[Candidate] = []
    for other in pool:
        if other.id in exclude or template_path(other.entry_url) != start:
            continue
        reached = await _goals_reached(db, other.id, goals)
        match = [g for g in reached if not wanted or g in wanted]
        if match:
            found.append(Candidate(other, match[0]))
            if len(found) >= MAX_CANDIDATES:
                break
    return found


async def _render(
    request: Request,
    db: AsyncSession,
    settings: Settings,
    principal: Any,
    *,
    left: UserSession,
    with_: uuid.UUID | None,
    exclude: set[uuid.UUID],
    issue: Issue | None,
) -> HTMLResponse:
    viewer = is_viewer(principal)
    goals = await analytics.list_goals(db)
    found = await candidates(db, left, exclude | {left.id}, goals)
    right: UserSession | None = None
    if with_ is not None:
        right = await db.get(UserSession, with_)
        if right is None:
            raise ProblemError(404, "Session not found", f"no session {with_}", field="with")
    elif found:
        right = found[0].session
    left_steps = _as_seen(await _steps(db, left.id), viewer)
    right_steps = _as_seen(await _steps(db, right.id), viewer) if right is not None else []
    rows = compare.side_by_side(left_steps, right_steps) if right is not None else []
    divergence = compare.first_divergence(left_steps, right_steps) if right is not None else None
    for s in (left, right):
        if s is not None:
            await audit.record_session(
                db,
                "session_compared",
                s,
                settings=settings,
                request=request,
                actor=principal.agent,
                commit=False,
                issue_id=issue.id if issue else None,
            )
    await db.commit()
    return render(
        request,
        "issues/compare.html",
        {
            "issue": issue,
            "left": left,
            "right": right,
            "rows": rows,
            "divergence": divergence,
            "candidates": found,
            "start_page": template_path(left.entry_url),
            "base_path": f"/issues/{issue.id}/compare" if issue else f"/sessions/{left.id}/compare",
        },
    )


@router.get("/issues/{issue_id}/compare", response_class=HTMLResponse)
async def issue_compare(
    request: Request,
    issue_id: RowId,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    with_: Annotated[uuid.UUID | None, Query(alias="with")] = None,
    session: Annotated[uuid.UUID | None, Query()] = None,
) -> HTMLResponse:
    """An example session of the issue (the latest, or `session`) beside a successful one."""
    issue = await db.get(Issue, issue_id)
    if issue is None:
        raise ProblemError(404, "Issue not found", f"no issue {issue_id}")
    affected = {
        r[0]
        for r in await db.execute(
            text(
                "SELECT session_id FROM issue_sessions WHERE issue_id = :id "
                "ORDER BY first_seen DESC LIMIT 1000"
            ),
            {"id": issue_id},
        )
    }
    if session is not None and session not in affected:
        raise ProblemError(
            400, "Not a session of this issue", f"session {session} did not meet this issue", field="session"
        )
    example_id = session or await db.scalar(
        text("SELECT session_id FROM issue_sessions WHERE issue_id = :id ORDER BY first_seen DESC LIMIT 1"),
        {"id": issue_id},
    )
    if example_id is None:
        raise ProblemError(404, "No session to compare", "this issue has no stored session any more")
    left = await svc.get_session(db, example_id)
    return await _render(
        request, db, settings, principal, left=left, with_=with_, exclude=affected, issue=issue
    )


@router.get("/sessions/{session_id}/compare", response_class=HTMLResponse)
async def session_compare(
    request: Request,
    session_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    with_: Annotated[uuid.UUID | None, Query(alias="with")] = None,
) -> HTMLResponse:
    left = await svc.get_session(db, session_id)
    return await _render(request, db, settings, principal, left=left, with_=with_, exclude=set(), issue=None)
