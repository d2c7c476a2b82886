"""The story builder as a pure function: collapsing, visits, bounds, and its invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.investigation.story import (
    MAX_ROWS,
    MAX_STEPS,
    MAX_VISITS,
    Gap,
    Step,
    StoryEvent,
    Visit,
    VisitGap,
    build_story,
    duration_words,
    mask_story,
)

PAY = "https://shop.example/pay"
HOME = "https://shop.example/"


def E(t: int, kind: str, url: str | None = PAY, **kw: object) -> StoryEvent:
    return StoryEvent(t, kind, url, **kw)  # type: ignore[arg-type]


def steps_of(story):
    return [r for r in story.flat() if isinstance(r, Step)]


def test_rage_clicks_collapse_into_one_step_with_a_count() -> None:
    events = [
        E(0, "navigation", title="Pay"),
        E(10_000, "click", sel="#pay", text="Pay now"),
        E(11_000, "rage_click", sel="#pay", text="Pay now"),
        E(12_000, "click", sel="#pay", text="Pay now"),
        E(12_500, "error", msg="TypeError: card declined"),
    ]
    story = build_story(events, duration_ms=40_000)
    words = [s.words for s in steps_of(story)]
    assert words == [
        ("opened", "/pay", ""),
        ("clicked", "Pay now", "3× in 2 s (rage)"),
        ("", "TypeError: card declined", ""),
    ]
    rage = steps_of(story)[1]
    assert (
        rage.kind == "rage" and rage.notable and rage.count == 3 and (rage.t, rage.t_end) == (10_000, 12_000)
    )
    assert story.duration_ms == 40_000 and story.last_path == "/pay" and story.visits == 1


def test_clicks_further_apart_or_on_other_elements_are_separate_steps() -> None:
    events = [
        E(0, "click", sel="#a", text="A"),
        E(1_000, "click", sel="#b", text="B"),
        E(10_000, "click", sel="#b", text="B"),  # more than 3 s after the last click on B
        E(10_500, "dead_click", sel="#b", text="B"),
    ]
    kinds = [(s.kind, s.target, s.count) for s in steps_of(build_story(events))]
    assert kinds == [("click", "A", 1), ("click", "B", 1), ("dead", "B", 2)]


def test_a_new_visit_at_each_navigation_and_each_unreported_page_change() -> None:
    events = [
        E(0, "navigation", HOME, title="Home"),
        E(500, "scroll", HOME, depth=30),
        E(900, "scroll", HOME, depth=70),
        E(2_000, "click", PAY, sel="#x"),  # the page changed without a navigation event
        E(3_000, "navigation", HOME),
    ]
    story = build_story(events)
    visits = [r for r in story.rows if isinstance(r, Visit)]
    assert [(v.path, v.count) for v in visits] == [("/", 3), ("/pay", 1), ("/", 1)]
    assert visits[0].title == "Home"
    assert steps_of(story)[1].words == ("scrolled", None, "2× to 70 %")


def test_repeated_errors_collapse_and_visits_count_notable_steps() -> None:
    events = [E(0, "navigation")] + [E(100 + i, "error", msg="boom") for i in range(5)]
    story = build_story(events)
    (visit,) = story.rows
    assert isinstance(visit, Visit)
    assert [s.words for s in visit.steps] == [("opened", "/pay", ""), ("", "boom", "5×")]
    assert visit.notable == {"error": 1}


def test_long_visit_is_trimmed_to_the_cap_keeping_errors_and_the_focus() -> None:
    # one page, 300 clicks on different elements, an error in the middle
    events = [E(0, "navigation")] + [E(1_000 * i, "click", sel=f"#b{i}") for i in range(1, 301)]
    events.append(E(150_500, "error", msg="late failure"))
    story = build_story(events, focus_ms=250_000)
    (visit,) = story.rows
    assert isinstance(visit, Visit)
    shown = [r for r in visit.rows if isinstance(r, Step)]
    gaps = [r for r in visit.rows if isinstance(r, Gap)]
    assert len(shown) == MAX_STEPS
    assert any(s.kind == "error" for s in shown)
    assert any(s.t == 250_000 for s in shown)  # the ?t= step is never left out
    assert sum(g.count for g in gaps) + sum(s.count for s in shown) == len(events)
    assert all(g.summary.endswith("clicks") or "click" in g.summary for g in gaps)


def test_a_5000_event_session_stays_within_the_row_bound() -> None:
    # like bench/session_view.py: a page every 50 events, an error every 500, clicks and scrolls
    events = []
    for i in range(5000):
        url = f"https://shop.example/p/{i // 50}"
        if i % 50 == 0:
            events.append(E(i * 1000, "navigation", url, title=f"Page {i // 50}"))
        elif i % 500 == 499:
            events.append(E(i * 1000, "error", url, msg=f"Error number {i}"))
        elif i % 7 == 0:
            events.append(E(i * 1000, "scroll", url, depth=i % 100))
        else:
            events.append(E(i * 1000, "click", url, sel=f"div.x{i % 3}"))
    story = build_story(events, duration_ms=5_000_000, focus_ms=3_210_000)
    rows = story.flat()
    assert len(rows) <= MAX_ROWS
    visits = [r for r in story.rows if isinstance(r, Visit)]
    assert len(visits) == MAX_VISITS and story.visits == 100
    with_errors = [v.path for v in visits if any(s.kind == "error" for s in v.steps)]
    assert with_errors == [f"/p/{n}" for n in range(9, 100, 10)]  # visits with errors are never left out
    assert any(v.t <= 3_210_000 <= v.t_end for v in visits)  # the focus visit is shown
    hidden = [r for r in story.rows if isinstance(r, VisitGap)]
    assert hidden and all(1 <= len(g.pages) <= 3 for g in hidden)


def test_masking_reaches_every_shown_text() -> None:
    events = [E(0, "navigation", "https://shop.example/u/jane@acme.io", title="jane@acme.io")]
    events.append(E(10, "click", "https://shop.example/u/jane@acme.io", text="Email jane@acme.io"))
    story = mask_story(build_story(events), lambda s: s.replace("jane@acme.io", "j***"))
    texts = [str(r.__dict__) for r in story.flat()] + [str(story.last_path)]
    assert not any("jane@acme.io" in t for t in texts)


def test_empty_session_and_duration_words() -> None:
    story = build_story([], duration_ms=12_000)
    assert story.rows == [] and story.events == 0 and story.duration_ms == 12_000
    assert [duration_words(ms) for ms in (999, 40_000, 185_000, 3_725_000)] == [
        "0 s",
        "40 s",
        "3 min 5 s",
        "1 h 2 min",
    ]


KINDS = [
    "navigation",
    "click",
    "rage_click",
    "dead_click",
    "error",
    "scroll",
    "form_submit",
    "custom",
    "hover",
]
event_strategy = st.builds(
    StoryEvent,
    t=st.integers(0, 600_000),
    type=st.sampled_from(KINDS),
    url=st.sampled_from([None, HOME, PAY, "https://shop.example/a", "/relative?q=1"]),
    sel=st.sampled_from([None, "#a", "#b", "button.pay"]),
    text=st.sampled_from([None, "Pay now", "  spaced\n text "]),
    msg=st.sampled_from([None, "boom", "TypeError"]),
    title=st.none(),
    name=st.sampled_from([None, "signup"]),
    depth=st.one_of(st.none(), st.integers(0, 100)),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(event_strategy, max_size=400), focus=st.one_of(st.none(), st.integers(0, 700_000)))
def test_every_event_is_in_exactly_one_row_and_rows_are_in_time_order(
    events: list[StoryEvent], focus: int | None
) -> None:
    story = build_story(events, focus_ms=focus)
    seen: list[int] = []
    for row in story.rows:
        if isinstance(row, VisitGap):
            seen.extend(row.indices)
        else:
            for item in row.rows:
                seen.extend(item.indices)
    assert sorted(seen) == list(range(len(events)))  # each event once: in a step or a counted summary
    times = [r.t for r in story.flat()]
    assert times == sorted(times)
    for r in story.flat():
        assert r.t <= r.t_end
        if isinstance(r, Step | Gap | VisitGap):
            assert all(r.t <= events[i].t <= r.t_end for i in r.indices)
    assert len(story.flat()) <= MAX_ROWS
    # the visits' own counts agree with what they hold, shown or summarised
    for row in story.rows:
        if isinstance(row, Visit):
            assert row.count == sum(item.count for item in row.rows)
