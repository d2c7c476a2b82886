"""Session comparison: steps from events, the first divergence (property tests), and the pages
(a failing session of an issue beside one that reached the same goal; masking; audit)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.issues import compare
from supportlens.issues.compare import Step, first_divergence, side_by_side
from supportlens.issues.models import Issue, IssueSession
from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import SessionEvent, UserSession


@dataclass
class Ev:
    event_type: str
    page_url: str | None = None
    element_selector: str | None = None
    event_data: dict[str, Any] = field(default_factory=dict)


step_lists = st.lists(st.sampled_from("abcd").map(lambda k: Step("page", k, k)), max_size=12)


@given(step_lists)
def test_a_session_does_not_diverge_from_itself(a):
    assert first_divergence(a, a) is None
    assert all(r.same and not r.diverges for r in side_by_side(a, a))


@given(step_lists, step_lists)
def test_divergence_is_the_end_of_the_common_prefix(a, b):
    d = first_divergence(a, b)
    assert d == first_divergence(b, a)  # symmetric
    if d is None:
        assert [s.key for s in a] == [s.key for s in b]
        return
    assert [s.key for s in a[:d]] == [s.key for s in b[:d]]
    assert d == min(len(a), len(b)) or a[d].key != b[d].key
    rows = side_by_side(a, b)
    assert [r.index for r in rows if r.diverges] == [d]
    assert not any(r.same for r in rows[d:])


@given(step_lists, step_lists.filter(bool))
def test_a_session_that_goes_on_diverges_where_the_other_stopped(a, extra):
    assert first_divergence(a, a + extra) == len(a)


def test_steps_template_pages_fold_repeats_and_skip_scrolls():
    events = [
        Ev("navigation", "https://shop.example/orders/123"),
        Ev("scroll", "https://shop.example/orders/123", event_data={"depth": 50}),
        Ev("navigation", "https://shop.example/orders/456"),  # the same page template: folded
        Ev("click", "https://shop.example/orders/456", "a.help", {"text": "Help"}),  # ordinary: left out
        Ev("rage_click", "https://shop.example/orders/456", "button#pay", {"text": "Pay now"}),
        Ev("rage_click", "https://shop.example/orders/456", "button#pay", {"text": "Pay now"}),
        Ev("error", "https://shop.example/pay", event_data={"message": "Card 4111 declined for id 991"}),
        Ev("custom", "https://shop.example/pay", event_data={"name": "checkout_done"}),
    ]
    out = compare.steps(events)
    assert [s.kind for s in out] == ["page", "rage_click", "error", "custom"]
    assert out[0].key == compare.steps([Ev("navigation", "https://shop.example/orders/9")])[0].key
    assert "Pay now" in out[1].label


SHOP = "https://shop.example"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


async def _session(db, pages: list[str], *, email: str | None = None, extra: list[Ev] = (), minutes: int = 0):
    sid = uuid.uuid4()
    start = T0 + timedelta(minutes=minutes)
    db.add(
        UserSession(
            id=sid,
            clarity_project_id="p",
            clarity_user_id="u",
            clarity_session_id=sid.hex[:12],
            customer_email=email,
            session_start=start,
            session_end=start + timedelta(minutes=5),
            entry_url=f"{SHOP}{pages[0]}",
            exit_url=f"{SHOP}{pages[-1]}",
        )
    )
    await db.flush()
    evs = [Ev("navigation", f"{SHOP}{p}") for p in pages] + list(extra)
    for i, ev in enumerate(evs):
        db.add(
            SessionEvent(
                id=uuid.uuid4(),
                session_id=sid,
                event_type=ev.event_type,
                event_data=ev.event_data,
                timestamp=start + timedelta(seconds=i),
                page_url=ev.page_url,
                element_selector=ev.element_selector,
            )
        )
    await db.commit()
    return sid


async def test_issue_compare_shows_a_matching_success_and_the_divergence(db, signed_in):
    db.add(ConversionGoal(kind="url", value="/thanks", label="Paid"))
    failing = await _session(
        db,
        ["/cart", "/pay"],
        email="ann@example.com",
        minutes=30,
        extra=[Ev("error", f"{SHOP}/pay", event_data={"message": "Transfer failed for ann@example.com"})],
    )
    success = await _session(db, ["/cart", "/pay", "/thanks"], minutes=10)
    await _session(db, ["/home", "/thanks"], minutes=20)  # another start page: not a match
    issue = Issue(
        fingerprint="fp-cmp", kind="error", title="Transfer failed", page="/pay", first_seen=T0, last_seen=T0
    )
    db.add(issue)
    await db.flush()
    db.add(IssueSession(issue_id=issue.id, session_id=failing, first_seen=T0))
    await db.commit()

    agent = await signed_in("agent")
    # Reached from the issue's page and from the session's own page.
    issue_page = await agent.client.get(f"/issues/{issue.id}", headers={"Accept": "text/html"})
    assert f'href="/issues/{issue.id}/compare"' in issue_page.text
    session_page = await agent.client.get(f"/sessions/{failing}", headers={"Accept": "text/html"})
    assert f'href="/sessions/{failing}/compare"' in session_page.text
    page = await agent.client.get(f"/issues/{issue.id}/compare", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert f"/sessions/{success}" in page.text and f"/sessions/{failing}" in page.text
    assert "They part at step 3" in page.text  # cart, pay the same; the error against /thanks
    assert "ann@example.com" in page.text  # agents see the message as it was

    viewer = await signed_in("viewer")
    masked = await viewer.client.get(f"/issues/{issue.id}/compare", headers={"Accept": "text/html"})
    assert masked.status_code == 200 and "ann@example.com" not in masked.text

    # Pick another explicitly; a session of another page is allowed when the agent asks for it.
    other = await agent.client.get(
        f"/sessions/{failing}/compare?with={success}", headers={"Accept": "text/html"}
    )
    assert other.status_code == 200 and 'data-testid="divergence-row"' in other.text
    bad = await agent.client.get(f"/sessions/{failing}/compare?with=not-a-uuid")
    assert bad.status_code in (400, 422) and "with" in bad.text
    missing = await agent.client.get(f"/sessions/{failing}/compare?with={uuid.uuid4()}")
    assert missing.status_code == 404

    entries = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "session_compared"))).all()
    assert {e.target for e in entries} >= {str(failing), str(success)}
