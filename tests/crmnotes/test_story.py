"""The session's story for a HubSpot note: pages in order, errors, frustration, the moment, the links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supportlens.crmnotes.story import PAGES_MAX, clock, session_story
from supportlens.integrations.hubspot.notes import NoteContentError

START = datetime(2026, 11, 26, 10, 38, tzinfo=UTC)
END = START + timedelta(minutes=7)
SHOP = "https://shop.example"


def nav(t: int, path: str, title: str = "") -> dict:
    return {"type": "navigation", "t": t, "url": SHOP + path, **({"title": title} if title else {})}


MARKS = [
    nav(0, "/", "Home"),
    nav(5_000, "/cart"),
    nav(6_000, "/cart"),  # a reload: one page
    nav(60_000, "/pay", "Pay"),
    {"type": "dead_click", "t": 61_000, "url": SHOP + "/pay", "sel": "button#later"},
    {"type": "rage_click", "t": 62_000, "url": SHOP + "/pay", "sel": "button#pay"},
    {"type": "rage_click", "t": 63_000, "url": SHOP + "/pay", "sel": "button#pay"},
    {"type": "error", "t": 64_500, "url": SHOP + "/pay", "msg": "TypeError: <img src=x onerror=1>"},
    {"type": "error", "t": 65_500, "url": SHOP + "/pay", "msg": "TypeError: <img src=x onerror=1>"},
]


def story(**kw):
    args = dict(
        start=START, end=END, marks=MARKS, at_ms=None, comment=None,
        recording_url="https://clarity.microsoft.com/player/p/u/s", supportlens_url="https://sl.example/sessions/1",
    )  # fmt: skip
    args.update(kw)
    return session_story(**args)


def test_the_story_in_a_few_lines() -> None:
    s = story()
    assert s.title == "SupportLens: session of Nov 26, 10:38–10:45 UTC (7 min)"
    assert s.lines == (
        "Pages (3): / → /cart → /pay",
        "Errors: 2",
        "Error at 1:04 on /pay: TypeError: <img src=x onerror=1>",  # repeated message once
        "Frustration: 2 rage clicks (most on button#pay, 2×); 1 dead click (most on button#later, 1×)",
    )
    assert [link.label for link in s.links] == ["Clarity recording", "Open in SupportLens"]
    html = s.to_html()
    assert "&lt;img src=x onerror=1&gt;" in html and "<img" not in html


def test_the_moment_is_the_last_mark_at_or_before_it() -> None:
    s = story(at_ms=63_500, comment="  Customer   tried twice ")
    assert s.title.endswith("moment 1:03")
    assert s.lines[-1] == "At 1:03: Rage click on button#pay (/pay) (at 1:03)"
    assert s.comment == "  Customer   tried twice "
    assert "<p>Customer tried twice</p>" in s.to_html()
    assert story(at_ms=0, marks=[]).lines[-1] == "At 0:00: before the first page was recorded"
    assert story(at_ms=60_000).lines[-1] == "At 1:00: opened /pay (Pay) (at 1:00)"


def test_a_quiet_session_says_so_and_long_paths_are_cut() -> None:
    many = [nav(i * 1000, f"/p{i}") for i in range(PAGES_MAX + 3)]
    s = story(marks=many, recording_url=None)
    assert s.lines[0].endswith("… (+3 more)") and s.lines[0].startswith(f"Pages ({PAGES_MAX + 3}): /p0 → /p1")
    assert s.lines[1:] == ("Errors: none", "Frustration: no rage or dead clicks")
    assert [link.label for link in s.links] == ["Open in SupportLens"]  # no recording, no link
    assert [link.label for link in story(recording_url="javascript:alert(1)").links] == [
        "Open in SupportLens"
    ]
    with pytest.raises(NoteContentError):
        story(supportlens_url="javascript:alert(1)").to_html()


def test_clock() -> None:
    assert [clock(0), clock(61_999), clock(3_600_000 + 61_000), clock(-5)] == [
        "0:00",
        "1:01",
        "1:01:01",
        "0:00",
    ]
