"""The HTML body of a HubSpot note: escaped, links http(s) only, never over HubSpot's 65,536 characters."""

from __future__ import annotations

import pytest

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
