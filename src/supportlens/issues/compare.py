"""Two sessions side by side as steps, and the first point where they diverge.

A session's steps are its page visits and key actions, in order: `page` (a navigation, its path
templated so /orders/123 and /orders/456 are one page), `form_submit` (the templated selector),
`error` (the normalised message), `rage_click` / `dead_click`, and `custom` events by name.
Ordinary clicks, scrolls and repeated identical steps in a row are left out: two people doing
the same thing click differently, and those differences would hide the one that matters.

Divergence: the first index where the two step lists' keys differ (the length of their common
prefix), or None when one has nothing the other lacks. Pure: events in, steps out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from supportlens.issues.fingerprint import normalise_message, template_path, template_selector

KEY_EVENTS = ("navigation", "form_submit", "error", "rage_click", "dead_click", "custom")
MAX_STEPS = 200  # a page shows at most this many steps per side


class EventLike(Protocol):
    event_type: str
    page_url: str | None
    element_selector: str | None
    event_data: dict[str, Any]


@dataclass(frozen=True)
class Step:
    kind: str  # page | form_submit | error | rage_click | dead_click | custom
    key: str  # what two sessions must share for the step to count as the same
    label: str  # what the agent reads (may hold customer text: mask for viewers)


def _step(ev: EventLike) -> Step | None:
    data = ev.event_data if isinstance(ev.event_data, dict) else {}
    page = template_path(ev.page_url)
    if ev.event_type == "navigation":
        return Step("page", f"page|{page}", f"Visited {page}")
    if ev.event_type in ("form_submit", "rage_click", "dead_click"):
        selector = template_selector(ev.element_selector)
        text = str(data.get("text") or "")[:80]
        what = {
            "form_submit": "Submitted",
            "rage_click": "Rage-clicked",
            "dead_click": "Dead click on",
        }
        label = f"{what[ev.event_type]} {text or selector or 'an element'} on {page}"
        return Step(ev.event_type, f"{ev.event_type}|{page}|{selector}", label)
    if ev.event_type == "error":
        raw = str(data.get("message") or data.get("msg") or "JavaScript error")[:300]
        return Step("error", f"error|{page}|{normalise_message(raw)}", f"Error on {page}: {raw}")
    if ev.event_type == "custom":
        name = str(data.get("name") or data.get("event") or data.get("key") or "")[:100]
        return Step("custom", f"custom|{name}", f"Event {name}") if name else None
    return None


def steps(events: Iterable[EventLike], limit: int = MAX_STEPS) -> list[Step]:
    """The session's steps, consecutive repeats folded, at most `limit`."""
    out: list[Step] = []
    for ev in events:
        step = _step(ev)
        if step is None or (out and out[-1].key == step.key):
            continue
        out.append(step)
        if len(out) >= limit:
            break
    return out


def first_divergence(a: Sequence[Step], b: Sequence[Step]) -> int | None:
    """The first index where the keys differ; None when the lists are the same. A list that goes
    on where the other stopped diverges where the other stopped."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x.key != y.key:
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


@dataclass(frozen=True)
class Row:
    index: int
    left: Step | None
    right: Step | None
    same: bool
    diverges: bool  # the first row where they part


def side_by_side(a: Sequence[Step], b: Sequence[Step]) -> list[Row]:
    d = first_divergence(a, b)
    rows = []
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        same = left is not None and right is not None and left.key == right.key
        rows.append(Row(i, left, right, same and (d is None or i < d), i == d))
    return rows
