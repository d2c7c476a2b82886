"""The HTML body of a HubSpot note: escaped, links http(s) only, never over HubSpot's 65,536 characters."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.integrations.hubspot.notes import NOTE_BODY_MAX, NoteContent, NoteContentError, NoteLink


def test_layout_and_escaping() -> None:
    body = NoteContent(
        title="Jane & the <pay> page",
        lines=("Error:\tTypeError\n<script>", "  "),
        comment='said "it\'s broken"',
        links=(NoteLink("Recording", "https://clarity.microsoft.com/player/p/u/s"),),
    ).to_html()
    assert body == (
        "<p><strong>Jane &amp; the &lt;pay&gt; page</strong></p>"
        "<ul><li>Error: TypeError &lt;script&gt;</li></ul>"
        "<p>said &quot;it&#x27;s broken&quot;</p>"
        '<p><a href="https://clarity.microsoft.com/player/p/u/s">Recording</a></p>'
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example/x", "/sessions/1", " ftp://x/y"]
)
def test_links_must_be_absolute_http(url: str) -> None:
    with pytest.raises(NoteContentError):
        NoteContent(title="t", links=(NoteLink("x", url),)).to_html()


def test_a_long_story_is_cut_to_fit_and_says_so() -> None:
    lines = tuple(f"<event {i}> " + "&" * 1_500 for i in range(200))  # each line escapes to ~7.5k chars
    content = NoteContent(
        title="t", lines=lines, comment="keep me", links=(NoteLink("r", "https://x.example/"),)
    )
    body = content.to_html()
    assert len(body) <= NOTE_BODY_MAX
    assert "keep me" in body and 'href="https://x.example/"' in body
    shown = body.count("<li>&lt;event")
    assert 0 < shown < 200 and f"… {200 - shown} more not shown" in body


def test_one_line_is_shortened() -> None:
    body = NoteContent(title="x" * 5_000).to_html()
    assert body == "<p><strong>" + "x" * 1_999 + "…</strong></p>"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


# Mostly the characters markup is made of, so that tags, attributes and entities come up often.
MARKUP = st.text(alphabet=st.sampled_from(list("<>&\"'=/!- abipst;#x")) | st.characters(), max_size=200)


@settings(max_examples=300, deadline=None)
@given(
    title=MARKUP,
    lines=st.lists(MARKUP, max_size=8),
    comment=st.none() | MARKUP,
    label=MARKUP,
    path=st.text(max_size=100),
)
def test_no_input_becomes_markup(
    title: str, lines: list[str], comment: str | None, label: str, path: str
) -> None:
    url = "https://shop.example/" + quote(path, safe="")
    body = NoteContent(
        title=title, lines=tuple(lines), comment=comment, links=(NoteLink(label, url),)
    ).to_html()
    our_tags = re.compile(r'</?(?:p|strong|ul|li)>|<br>|<a href="[^"<>]*">|</a>')
    assert "<" not in our_tags.sub("", body) and ">" not in our_tags.sub("", body)
    parsed = _Tags()
    parsed.feed(body)
    parsed.close()
    assert {tag for tag, _ in parsed.tags} <= {"p", "strong", "ul", "li", "a", "br"}
    for tag, attrs in parsed.tags:
        assert attrs == ([("href", url)] if tag == "a" else []), (tag, attrs)
    shown = "".join(parsed.text)
    for word in title.split():  # the words typed come back as text, not as markup
        assert word in shown
