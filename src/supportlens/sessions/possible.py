"""Possible sessions: links the engine scored below the listing threshold but not below a floor (pure).

The engine already stores every candidate link from `scoring.STORE_FLOOR` up, with its confidence and
worded evidence, and re-scores it when new evidence arrives. A possible session is therefore not a
state of its own but a band of those rows: no agent has decided on the pair, and its confidence lies in
[floor, threshold). An agent confirms one (a manual "link") or dismisses it (a manual "unlink"); both
are manual decisions, which re-scoring keeps and the calibration report reads as labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# How many possible sessions the API and the panel return for one customer, newest first.
POSSIBLE_LIMIT = 20

# An agent's words for a dismissal when they give none.
DISMISS_REASON = "not this customer"

# The panel's short names of evidence methods, in the order they are said.
_PHRASES = (
    ("device_link", "same browser"),
    ("time_proximity", "same network, minutes apart"),
    ("ip_match", "same network"),
)


def is_possible(
    confidence: float, *, decision: str | None, floor: float, threshold: float, automated: str | None = None
) -> bool:
    """Whether a stored link is a possible session: undecided, human traffic, in [floor, threshold)."""
    return decision is None and automated is None and floor <= confidence < threshold


def possible_emails(confidences: Mapping[str, float], *, floor: float, threshold: float) -> list[str]:
    """The candidates of one session (e-mail -> confidence) that are possible, surest first.

    For a benchmark that scores a world in memory: the same band as the stored rows'."""
    kept = [e for e, c in confidences.items() if floor <= c < threshold]
    return sorted(kept, key=lambda e: (-confidences[e], e))


def evidence_phrase(methods: Iterable[str]) -> str:
    """What a group of possible sessions rests on, e.g. "same network, no sign-in".

    A possible session is never a signed-in one (the site's sign-in links at 1.00), so every phrase
    ends with "no sign-in"."""
    seen = set(methods)
    said = [text for method, text in _PHRASES if method in seen]
    if "same network, minutes apart" in said and "same network" in said:
        said.remove("same network")
    return ", ".join([*said, "no sign-in"])


def heading(count: int, methods: Iterable[str], *, more: bool = False) -> str:
    """The panel's collapsed line: "3 possible sessions — same network, no sign-in"."""
    noun = "possible session" if count == 1 and not more else "possible sessions"
    return f"{count}{'+' if more else ''} {noun} — {evidence_phrase(methods)}"
