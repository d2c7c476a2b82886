"""The session told as a story: page visits, each a short list of steps in words.

Model. The input is the session's events in time order (offset `t` in ms from the session start,
type, page URL, element selector/text, error message…). The output is a `Story`:

- A **visit** starts at every `navigation` event, and wherever an event names a different page URL
  than the visit it would join (a page change the tracker did not report). Its first step is
  "opened <page>" when a navigation event started it.
- Inside a visit, consecutive events collapse into one **step** with a count:
  clicks on the same element (selector, else its text) no more than `CLICK_RUN_GAP_MS` apart
  ("clicked Pay now 3× in 2 s"; a run with a rage click is a *rage* step, else with a dead click a
  *dead* step), consecutive scrolls ("scrolled to 80 %", the deepest), the same error message
  repeated, the same custom event repeated. Any other event is a step of its own.
- Errors, rage and dead clicks are **notable**: they are kept when a visit is trimmed.
- Bounded: a visit shows at most `MAX_STEPS` steps (the opening step, the focus step, notable steps,
  then the earliest others); each run of steps left out becomes one **gap** that counts them by
  kind. The story shows at most `MAX_VISITS` visits (the focus visit, the first and the last,
  visits with notable steps, then the earliest); each run of visits left out becomes one
  **visit gap** with its event count and pages. So the rows on the page stay under
  `MAX_ROWS` whatever the number of events.
- Every input event is in exactly one step, gap or visit gap (their `indices` partition the input),
  and rows are in time order. The end: "left after <duration>" (the session's length).

Pure: no database, no clock. `build_story(events, duration_ms=…, focus_ms=…)`; the service loads the
events (`story_reads.story_events`) and the template renders the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

CLICK_RUN_GAP_MS = 3000  # clicks on one element further apart than this are separate steps
MAX_STEPS = 8  # steps shown per visit
MAX_VISITS = 20  # visits shown
# Per visit: its header, ≤ MAX_STEPS steps and ≤ MAX_STEPS + 1 gaps; plus the visit gaps and the end.
MAX_ROWS = MAX_VISITS * (1 + 2 * MAX_STEPS + 1) + MAX_VISITS + 1 + 1
MAX_LABEL = 120  # element names and messages come from the public ingest: bounded on screen

CLICKS = {"click": "click", "rage_click": "rage", "dead_click": "dead"}
NOTABLE = ("error", "rage", "dead")
STEP_KINDS = {"navigation": "open", "error": "error", "scroll": "scroll", "form_submit": "form"}
STEP_KINDS["custom"] = "custom"
STEP_KINDS.update(CLICKS)
KIND_WORDS = {
    "open": ("page opened", "pages opened"),
    "click": ("click", "clicks"),
    "rage": ("rage click", "rage clicks"),
    "dead": ("dead click", "dead clicks"),
    "error": ("error", "errors"),
    "scroll": ("scroll", "scrolls"),
    "form": ("form sent", "forms sent"),
    "custom": ("event", "events"),
    "other": ("other event", "other events"),
}


class StoryEvent(NamedTuple):
    """What the story needs of one event (story_reads.story_events reads just these columns)."""

    t: int
    type: str
    url: str | None = None
    sel: str | None = None
    text: str | None = None
    msg: str | None = None
    title: str | None = None
    name: str | None = None
    depth: int | None = None


@dataclass
class Step:
    kind: str  # open | click | rage | dead | error | scroll | form | custom | other
    t: int
    t_end: int
    indices: list[int]
    target: str | None = None  # element name, error message, event name or page title
    depth: int | None = None
    clicks: int = 0  # in a click run: how many events were clicks of any kind

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def notable(self) -> bool:
        return self.kind in NOTABLE

    @property
    def row(self) -> str:
        return "step"

    @property
    def words(self) -> tuple[str, str | None, str]:
        """(verb, the thing named in bold or None, the rest): "clicked", "Pay now", "3× in 2 s (rage)"."""
        n = self.count
        times = f"{n}×" if n > 1 else ""
        if self.kind in CLICKS.values():
            span = (
                f" in {duration_words(self.t_end - self.t)}" if n > 1 and self.t_end - self.t >= 1000 else ""
            )
            span = span or (" in under 1 s" if n > 1 else "")
            tag = {"rage": " (rage)", "dead": " (dead: nothing happened)"}.get(self.kind, "")
            return "clicked", self.target or "the page", f"{times}{span}{tag}".strip()
        if self.kind == "open":
            return "opened", self.target, ""
        if self.kind == "error":  # the row's "Error" badge says what it is
            return "", self.target, times
        if self.kind == "scroll":
            depth = f"to {self.depth} %" if self.depth is not None else ""
            return "scrolled", None, f"{times} {depth}".strip()
        if self.kind == "form":
            return "sent a form", self.target, times
        if self.kind == "custom":
            return "event", self.target, times
        return "event", self.target, times


@dataclass
class Gap:
    """Steps of a visit left out: how many, of which kinds, from when to when."""

    t: int
    t_end: int
    steps: int
    indices: list[int]
    kinds: dict[str, int]

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def row(self) -> str:
        return "gap"

    @property
    def summary(self) -> str:
        return summarise(self.kinds)


@dataclass
class Visit:
    url: str | None
    path: str
    title: str | None
    t: int
    t_end: int
    rows: list[Step | Gap] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # all steps, before trimming

    @property
    def row(self) -> str:
        return "visit"

    @property
    def count(self) -> int:
        return sum(s.count for s in self.steps)

    @property
    def notable(self) -> dict[str, int]:
        found = Counter(s.kind for s in self.steps if s.notable)
        return {k: found[k] for k in NOTABLE if found[k]}


@dataclass
class VisitGap:
    """Visits left out of a long story: how many, their events and a few of their pages."""

    t: int
    t_end: int
    visits: int
    indices: list[int]
    pages: list[str]

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def row(self) -> str:
        return "visit_gap"


@dataclass
class Story:
    rows: list[Visit | VisitGap]
    events: int
    visits: int
    duration_ms: int
    last_path: str | None

    def flat(self) -> list[Step | Gap | Visit | VisitGap]:
        """Every row in page order (visit headers, their steps and gaps, visit gaps)."""
        out: list[Step | Gap | Visit | VisitGap] = []
        for r in self.rows:
            out.append(r)
            if isinstance(r, Visit):
                out.extend(r.rows)
        return out


def page_path(url: str | None) -> str:
    if not url:
        return "an unknown page"
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:MAX_LABEL]
    return (parts.path or "/")[:MAX_LABEL] if parts.scheme or parts.netloc else url[:MAX_LABEL]


def _clip(value: str | None) -> str | None:
    if not value:
        return None
    value = " ".join(value.split())
    return value if len(value) <= MAX_LABEL else value[: MAX_LABEL - 1] + "…"


def element_name(ev: StoryEvent) -> str | None:
    """The element as an agent would name it: its visible text, else its selector."""
    return _clip(ev.text) or _clip(ev.sel)


def summarise(kinds: dict[str, int]) -> str:
    parts = []
    for kind in KIND_WORDS:
        n = kinds.get(kind, 0)
        if n:
            one, many = KIND_WORDS[kind]
            parts.append(f"{n:,} {one if n == 1 else many}")
    return ", ".join(parts)


def _step_of(ev: StoryEvent, i: int) -> Step:
    kind = STEP_KINDS.get(ev.type, "other")
    target: str | None
    if kind == "open":
        target = page_path(ev.url)
    elif kind == "error":
        target = _clip(ev.msg) or "JavaScript error"
    elif kind in CLICKS.values():
        target = element_name(ev)
    elif kind == "form":
        target = _clip(ev.sel)
    elif kind == "custom":
        target = _clip(ev.name)
    elif kind == "other":
        target = _clip(ev.type)
    else:
        target = None
    return Step(kind, ev.t, ev.t, [i], target, ev.depth, clicks=1 if ev.type in CLICKS else 0)


def _joins(step: Step, ev: StoryEvent, click: str | None, key: str | None, last_key: str | None) -> bool:
    """Whether `ev` continues `step` (the rule of the model above)."""
    if click is not None:
        return step.clicks > 0 and key == last_key and ev.t - step.t_end <= CLICK_RUN_GAP_MS
    kind = step.kind
    if ev.type == "scroll":
        return kind == "scroll"
    if ev.type == "error":
        return kind == "error" and step.target == (_clip(ev.msg) or "JavaScript error")
    if ev.type == "custom":
        return kind == "custom" and step.target == _clip(ev.name)
    return False


def _visits(events: Sequence[StoryEvent], order: list[int]) -> list[Visit]:
    visits: list[Visit] = []
    cur: Visit | None = None
    prev: Step | None = None  # the visit's last step
    last_key: str | None = None  # the element of the last event when it was a click
    for i in order:  # the hot loop of a long session: kept to plain local lookups
        ev = events[i]
        typ, url = ev.type, ev.url
        if cur is None or typ == "navigation" or (url is not None and cur.url is not None and url != cur.url):
            cur = Visit(url, page_path(url), _clip(ev.title), ev.t, ev.t)
            visits.append(cur)
            prev, last_key = None, None
        elif cur.url is None and url:
            cur.url, cur.path = url, page_path(url)
        click = CLICKS.get(typ)
        key = (ev.sel or ev.text) if click is not None else None
        if prev is not None and _joins(prev, ev, click, key, last_key):
            prev.indices.append(i)
            prev.t_end = ev.t
            if click is not None:
                prev.clicks += 1
                # a rage click anywhere in the run makes it a rage step; a dead one a dead step
                if click == "rage" or (click == "dead" and prev.kind == "click"):
                    prev.kind = click
                if prev.target is None:
                    prev.target = element_name(ev)
            elif typ == "scroll" and ev.depth is not None:
                prev.depth = max(prev.depth or 0, ev.depth)
        else:
            prev = _step_of(ev, i)
            cur.steps.append(prev)
        last_key = key
        cur.t_end = ev.t  # events come in time order
    return visits


def _keep(n: int, cap: int, must: list[int], rank: Callable[[int], tuple[int, int]]) -> list[bool]:
    """Which of n items to show: every one when n <= cap, else `must` first, then by rank."""
    if n <= cap:
        return [True] * n
    chosen: set[int] = set()
    for i in must:
        if len(chosen) < cap:
            chosen.add(i)
    for i in sorted(range(n), key=rank):
        if len(chosen) >= cap:
            break
        chosen.add(i)
    return [i in chosen for i in range(n)]


def _focus_index(items: Sequence[Step | Visit], focus_ms: int | None) -> int | None:
    if focus_ms is None or not items:
        return None
    best = 0
    for n, item in enumerate(items):
        if item.t <= focus_ms:
            best = n
    return best


def _trim_visit(visit: Visit, focus_ms: int | None) -> None:
    steps = visit.steps
    focus = _focus_index(steps, focus_ms)
    must = [0] + ([focus] if focus is not None else [])
    notable_first = {"error": 0, "rage": 1, "dead": 2}
    shown = _keep(len(steps), MAX_STEPS, must, lambda i: (notable_first.get(steps[i].kind, 3), i))
    rows: list[Step | Gap] = []
    for i, step in enumerate(steps):
        if shown[i]:
            rows.append(step)
            continue
        last = rows[-1] if rows else None
        if isinstance(last, Gap):
            last.t_end = step.t_end
            last.steps += 1
            last.indices.extend(step.indices)
            last.kinds[step.kind] = last.kinds.get(step.kind, 0) + step.count
        else:
            rows.append(Gap(step.t, step.t_end, 1, list(step.indices), {step.kind: step.count}))
    visit.rows = rows


def build_story(
    events: Sequence[StoryEvent],
    *,
    duration_ms: int = 0,
    focus_ms: int | None = None,
) -> Story:
    """The story of `events` (any order; told in time order, ties in input order).

    `duration_ms`: the session's length (the "left after" step); `focus_ms`: a moment the reader
    opens the story at (`?t=`), whose step is never left out."""
    order = sorted(range(len(events)), key=lambda i: events[i].t)
    visits = _visits(events, order)
    focus = _focus_index(visits, focus_ms)
    must = [0, len(visits) - 1] + ([focus] if focus is not None else []) if visits else []
    shown = _keep(len(visits), MAX_VISITS, must, lambda i: (0 if visits[i].notable else 1, i))
    rows: list[Visit | VisitGap] = []
    for i, visit in enumerate(visits):
        if shown[i]:
            _trim_visit(visit, focus_ms if i == focus else None)
            rows.append(visit)
            continue
        indices = [j for s in visit.steps for j in s.indices]
        last = rows[-1] if rows else None
        if isinstance(last, VisitGap):
            last.t_end = visit.t_end
            last.visits += 1
            last.indices.extend(indices)
            if visit.path not in last.pages and len(last.pages) < 3:
                last.pages.append(visit.path)
        else:
            rows.append(VisitGap(visit.t, visit.t_end, 1, indices, [visit.path]))
    last_t = events[order[-1]].t if order else 0
    return Story(
        rows=rows,
        events=len(events),
        visits=len(visits),
        duration_ms=max(duration_ms, last_t),
        last_path=visits[-1].path if visits else None,
    )


def duration_words(ms: int) -> str:
    """ "40 s", "3 min 5 s", "1 h 2 min": how long, in words an agent reads at a glance."""
    s = max(0, ms) // 1000
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def mask_story(story: Story, mask: Callable[[str], str]) -> Story:
    """Apply `mask` (e.g. PII masking for viewers) to every text the story shows, in place."""
    for row in story.rows:
        if isinstance(row, VisitGap):
            row.pages = [mask(p) for p in row.pages]
            continue
        row.path = mask(row.path)
        row.url = mask(row.url) if row.url else None
        row.title = mask(row.title) if row.title else None
        for step in row.steps:
            step.target = mask(step.target) if step.target else None
    if story.last_path:
        story.last_path = mask(story.last_path)
    return story
