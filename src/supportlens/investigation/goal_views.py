"""Admin: the conversion goals the analytics count (pages and custom events)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError

from supportlens.audit import service as audit
from supportlens.auth.deps import (
    AdminPrincipal,
    DbDep,
)
from supportlens.problems import ProblemError
from supportlens.sessions import analytics
from supportlens.sessions.goals import GOAL_KINDS, ConversionGoal
from supportlens.web.pages import render

router = APIRouter(tags=["investigation"])
pages = APIRouter(include_in_schema=False)


@pages.get("/admin/goals", response_class=HTMLResponse)
async def goals_page(request: Request, db: DbDep, principal: AdminPrincipal, error: str = "") -> HTMLResponse:
    goals = await analytics.list_goals(db)
    return render(request, "investigation/goals.html", {"goals": goals, "error": error[:200]})


@pages.post("/admin/goals")
async def add_goal(
    request: Request,
    db: DbDep,
    principal: AdminPrincipal,
    kind: Annotated[str, Form(max_length=8)] = "",
    value: Annotated[str, Form(max_length=500)] = "",
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    value = value.strip()
    if kind not in GOAL_KINDS or not value:
        goals = await analytics.list_goals(db)
        msg = "Choose a kind and enter a URL part or an event name."
        return render(request, "investigation/goals.html", {"goals": goals, "error": msg}, status_code=400)
    goal = ConversionGoal(kind=kind, value=value, label=label.strip(), created_by_agent_id=principal.agent.id)
    db.add(goal)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        goals = await analytics.list_goals(db)
        return render(
            request,
            "investigation/goals.html",
            {"goals": goals, "error": "That goal exists."},
            status_code=409,
        )
    await audit.record(
        db,
        "conversion_goal_added",
        request=request,
        actor=principal.agent,
        target_type="conversion_goal",
        target=str(goal.id),
        detail={"kind": kind, "value": value[:200]},
    )
    return RedirectResponse("/admin/goals", status_code=303)


@pages.post("/admin/goals/{goal_id}/delete")
async def delete_goal(request: Request, goal_id: uuid.UUID, db: DbDep, principal: AdminPrincipal) -> Response:
    goal = await db.get(ConversionGoal, goal_id)
    if goal is None:
        raise ProblemError(404, "Goal not found")
    await db.delete(goal)
    await audit.record(
        db,
        "conversion_goal_deleted",
        request=request,
        actor=principal.agent,
        target_type="conversion_goal",
        target=str(goal_id),
        detail={"kind": goal.kind, "value": goal.value[:200]},
    )
    return RedirectResponse("/admin/goals", status_code=303)


router.include_router(pages)
