"""The investigation demo seed: goals, Jane's failed payment visit (through real ingest) and a note."""

from __future__ import annotations

from sqlalchemy import select

from supportlens.sessions import analytics as stats
from supportlens.sessions import reads as service
from supportlens.sessions.models import SessionAnnotation, UserSession
from supportlens_sandbox import payment_visit as demo
from supportlens_sandbox.crm_demo import today_world
from supportlens_sandbox.sessions_demo import ensure_demo_site


async def test_demo_seed_lines_up_the_error_with_the_failed_transfer(db):
    await ensure_demo_site(db, "http://127.0.0.1:8004")
    await demo.seed(db, None)  # type: ignore[arg-type]
    await demo.seed(db, None)  # type: ignore[arg-type]  # idempotent
    goals = await stats.list_goals(db)
    assert {(g.kind, g.value) for g in goals} == {("url", "/thank-you"), ("event", "checkout_started")}
    jane = select(UserSession).where(UserSession.customer_email == "jane@acme.io")
    session = (await db.scalars(jane)).one()
    analytics = await stats.session_analytics(db, session, goals)
    assert analytics.error_count == 1 and analytics.rage_clicks == 1 and analytics.dead_clicks == 1
    assert [g["value"] for g in analytics.goals_reached] == ["checkout_started"]
    of_session = select(SessionAnnotation).where(SessionAnnotation.session_id == session.id)
    notes = (await db.scalars(of_session)).all()
    assert len(notes) == 1
    failed = next(c for c in today_world().customers if c.email == "jane@acme.io").failed_transfers[0]
    marks = await service.markers(db, session)
    err = next(m for m in marks if m["type"] == "error")
    assert abs((failed.created - session.session_start).total_seconds() * 1000 - err["t"] - 60_000) < 1000
