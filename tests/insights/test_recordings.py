"""Recordings enrichment: ids parsed from each item's player link; malformed items skipped."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from supportlens.db.base import utcnow
from supportlens.insights import service
from supportlens.insights.models import ClarityConnection
from supportlens.sessions.models import UserSession
from supportlens_sandbox.clarity import SimSession
from supportlens_sandbox.clarity.simulator import SimPage
from tests.insights.support import PROJECT, running_simulator


def _session(user: str, sid: str, project: str = PROJECT) -> UserSession:
    now = utcnow()
    return UserSession(
        clarity_project_id=project,
        clarity_user_id=user,
        clarity_session_id=sid,
        session_start=now - timedelta(minutes=20),
        session_end=now - timedelta(minutes=5),
        clarity_data={"ours": 1},
    )


async def test_enrichment_matches_ids_from_the_link_and_skips_malformed_items(settings_factory, sessionmaker):
    async with sessionmaker() as db:
        db.add_all(
            [
                _session("u1", "s1"),  # matched
                _session("u2", "s1"),  # same sessionId, other user: not matched
                _session("u1", "s1", project="other"),  # other project: not matched
                _session("u3", "s3"),  # no recording at Clarity
            ]
        )
        await db.commit()
    with running_simulator() as sim:
        now = utcnow()
        sim.state.add_session(
            SimSession(
                project_id=PROJECT,
                user_id="u1",
                session_id="s1",
                started_at=now - timedelta(minutes=20),
                duration_seconds=545,
                active_seconds=190,
                clicks=12,
                rage=2,
                dead=1,
                quickback=1,
                pages=[
                    SimPage("https://shop.example/", "Home", 0),
                    SimPage("https://shop.example/pay", "Pay", 60000),
                ],
            )
        )
        sim.state.add_session(
            SimSession(
                project_id=PROJECT, user_id="u9", session_id="s9", started_at=now - timedelta(minutes=10)
            )
        )  # unknown to us
        sim.state.add_session(
            SimSession(project_id=PROJECT, user_id="u8", session_id="old", started_at=now - timedelta(days=3))
        )  # outside the window
        sim.state.extra_recordings = [
            {"link": "https://clarity.microsoft.com/projects/view/demo123/dashboard"},
            {"timestamp": "2026-11-26 10:00:00"},
            "not an object",
            42,
            {"link": {"nested": True}},
        ]
        settings = settings_factory(**sim.settings(clarity_recordings_enabled=True))
        result = await service.pull_recordings(sessionmaker, settings)
    assert result.outcome == "ok", result.message
    assert (result.fetched, result.matched, result.skipped) == (2, 1, 5)
    async with sessionmaker() as db:
        rows = {
            (r.clarity_project_id, r.clarity_user_id, r.clarity_session_id): r
            for r in (await db.scalars(select(UserSession))).all()
        }
        hit = rows[(PROJECT, "u1", "s1")]
        assert hit.clarity_confirmed is True
        data = hit.clarity_data
        assert data["ours"] == 1  # existing data kept
        assert data["totalDurationSeconds"] == 545 and data["activeDurationSeconds"] == 190
        assert data["pagesCount"] == 2 and data["clickCount"] == 12
        assert data["smartEvents"] == {"rageClicks": 2, "deadClicks": 1, "quickbacks": 1}
        assert data["link"].endswith(f"/player/{PROJECT}/u1/s1")
        for key in ((PROJECT, "u2", "s1"), ("other", "u1", "s1"), (PROJECT, "u3", "s3")):
            assert rows[key].clarity_confirmed is False and "smartEvents" not in rows[key].clarity_data
        conn = await db.get(ClarityConnection, PROJECT)
        assert conn.recordings_status == "ok" and conn.recordings_matched == 1


async def test_recordings_off_by_default_and_errors_are_recorded(settings_factory, sessionmaker):
    with running_simulator() as sim:
        off = await service.pull_recordings(sessionmaker, settings_factory(**sim.settings()))
        assert off.outcome == "disabled" and sim.state.recordings_requests == 0
        bad = settings_factory(**sim.settings(clarity_recordings_enabled=True, clarity_api_token="wrong"))
        result = await service.pull_recordings(sessionmaker, bad)
        assert result.outcome == "unauthorized"
        limited = settings_factory(
            **sim.settings(clarity_recordings_enabled=True, clarity_recordings_daily_calls=2)
        )
        assert (await service.pull_recordings(sessionmaker, limited)).outcome == "ok"
        assert (await service.pull_recordings(sessionmaker, limited)).outcome == "budget_exhausted"
        assert sim.state.recordings_requests == 2
    async with sessionmaker() as db:
        conn = await db.get(ClarityConnection, PROJECT)
        assert conn.recordings_status == "ok"
