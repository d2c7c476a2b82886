"""Clarity's own figures for one session (clarity/session_view.py, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from supportlens.insights.models import ClarityConnection
from supportlens.insights.session_view import session_figures

OURS = {"rage_clicks": 1, "dead_clicks": 3, "error_count": 1}
STORED = {
    "source": "clarity_recordings",
    "link": "https://clarity.microsoft.com/player/p/u/s",
    "totalDurationSeconds": 362,
    "activeDurationSeconds": 48,
    "pagesCount": 2,
    "clickCount": 9,
    "smartEvents": {"rageClicks": 2, "deadClicks": 3, "quickbacks": 1},
    "enrichedAt": "2026-12-07T17:20:00+00:00",
}


def conn(status: str | None) -> ClarityConnection:
    return ClarityConnection(
        project_id="p",
        recordings_status=status,
        recordings_last_pull_at=datetime(2026, 12, 7, 17, 30, tzinfo=UTC),
    )


def test_off_when_the_recordings_list_is_turned_off() -> None:
    assert session_figures(STORED, OURS, enabled=False, connection=conn("ok")).state == "off"


def test_enriched_figures_sit_beside_ours() -> None:
    f = session_figures(STORED, OURS, enabled=True, connection=conn("ok"))
    assert (f.state, f.failure, f.duration_s, f.active_s, f.pages, f.clicks) == (
        "enriched",
        None,
        362,
        48,
        2,
        9,
    )
    assert [(e.key, e.clarity, e.ours) for e in f.smart] == [
        ("rageClicks", 2, 1),
        ("deadClicks", 3, 3),
        ("scriptErrors", 0, 1),  # we saw an error Clarity did not count: shown, not hidden
        ("quickbacks", 1, None),
    ]
    assert f.enriched_at == datetime(2026, 12, 7, 17, 20, tzinfo=UTC)


def test_a_failing_read_is_said_in_plain_words_with_or_without_figures() -> None:
    f = session_figures(STORED, OURS, enabled=True, connection=conn("unauthorized"))
    assert f.state == "enriched" and f.failure == (
        "The last read of Clarity's recordings list failed: Clarity refused the API token."
    )
    waiting = session_figures({}, OURS, enabled=True, connection=conn("error"))
    assert waiting.state == "waiting" and "Clarity did not answer" in (waiting.failure or "")
    assert session_figures(None, OURS, enabled=True, connection=None).failure is None


def test_unreadable_stored_figures_are_left_out() -> None:
    odd = dict(
        STORED, totalDurationSeconds="long", smartEvents=["rage"], enrichedAt="yesterday", pagesCount=True
    )
    f = session_figures(odd, {}, enabled=True, connection=None)
    assert (f.duration_s, f.pages, f.enriched_at, f.smart) == (None, None, None, [])
