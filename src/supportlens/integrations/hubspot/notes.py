"""The HTML body of a HubSpot note, built from plain text that may come from an attacker.

A session's story carries what a customer's browser sent (page titles, URLs, error messages) and what
an agent typed, so every string is escaped here and nothing passed in is ever treated as markup. The
body uses only tags HubSpot's note editor keeps (`p`, `strong`, `ul`, `li`, `a`, `br`); links are
`http`/`https` only (a `javascript:` URL is refused, not escaped into a live link). HubSpot caps
`hs_note_body` at 65,536 characters: lines are dropped from the end, and the fact said, until the body
fits; the title, the comment and the links always stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlsplit

NOTE_BODY_MAX = 65_536  # characters (HubSpot's limit on hs_note_body)
TEXT_MAX = 2_000  # characters of one line, title or comment before it is shortened
COMMENT_MAX = 5_000


class NoteContentError(ValueError):
    """The content cannot become a note (e.g. a link that is not http or https)."""


def _text(value: str, limit: int) -> str:
    value = " ".join(value.split())  # no markup, no layout tricks with newlines and tabs
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _href(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise NoteContentError("a note link must be an absolute http(s) URL")
    return escape(url.strip(), quote=True)


@dataclass(frozen=True)
class NoteLink:
    label: str
    url: str


@dataclass(frozen=True)
class NoteContent:
    """What a note says: a title, a few lines of story, an optional agent comment and links."""

    title: str
    lines: tuple[str, ...] = ()
    comment: str | None = None
    links: tuple[NoteLink, ...] = field(default_factory=tuple)

    def to_html(self) -> str:
        head = f"<p><strong>{escape(_text(self.title, TEXT_MAX))}</strong></p>"
        comment = ""
        if self.comment and self.comment.strip():
            comment = f"<p>{escape(_text(self.comment, COMMENT_MAX))}</p>"
        links = ""
        if self.links:
            items = "<br>".join(
                f'<a href="{_href(link.url)}">{escape(_text(link.label, TEXT_MAX))}</a>'
                for link in self.links
            )
            links = f"<p>{items}</p>"
        lines = [f"<li>{escape(_text(line, TEXT_MAX))}</li>" for line in self.lines if line.strip()]
        fixed = len(head) + len(comment) + len(links)
        if fixed > NOTE_BODY_MAX:
            raise NoteContentError("the note's title, comment and links alone exceed HubSpot's limit")
        dropped = 0
        while lines:
            more = f"<li>… {dropped} more not shown</li>" if dropped else ""
            story = "<ul>" + "".join(lines) + more + "</ul>"
            if fixed + len(story) <= NOTE_BODY_MAX:
                return head + story + comment + links
            lines.pop()
            dropped += 1
        return head + comment + links
