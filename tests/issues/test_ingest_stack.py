"""From ingest to issues: an error's stack is stored bounded and masked, and grouping reads it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from supportlens.capture import sites
from supportlens.issues import service
from supportlens.issues.models import Issue
from supportlens.sessions.models import SessionEvent
from tests.support.ingest import ORIGIN, PROJECT, ago, batch, event, headers

CHROME_STACK = (
    "TypeError: Cannot read properties of undefined (reading 'amount')\n"
    "    at o (https://shop.example/static/js/main.3f9a2c1b.js?u=jane@acme.io:1:23456)\n"
    "    at HTMLButtonElement.submitPayment (https://shop.example/static/js/main.3f9a2c1b.js:1:30001)"
)
SAFARI_STACK = (
    "e@https://shop.example/static/js/main.77aa01ff.js:1:11111\n"
    "submitPayment@https://shop.example/static/js/main.77aa01ff.js:1:2222"
)


@pytest.fixture
async def site_key(db: Any) -> str:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


async def test_stacks_are_stored_masked_and_group_two_browsers_into_one_issue(client, db, site_key):
    events = [
        event("error", at=ago(minutes=2), data={
            "message": "Uncaught TypeError: Cannot read properties of undefined (reading 'amount')",
            "stack": CHROME_STACK}),
        event("error", at=ago(minutes=1), data={
            "message": "TypeError: undefined is not an object (evaluating 'e.amount')",
            "stack": SAFARI_STACK}),
        event("click", at=ago(minutes=1), selector="button#pay", data={"text": "Pay"}),
    ]  # fmt: skip
    r = await client.post("/api/ingest/v1/events", json=batch(site_key, events), headers=headers())
    assert r.status_code == 202, r.text

    stored = (await db.scalars(select(SessionEvent).where(SessionEvent.event_type == "error"))).all()
    chrome = next(e for e in stored if "reading" in e.event_data["message"])
    assert "jane@acme.io" not in chrome.event_data["stack"] and "[email]" in chrome.event_data["stack"]
    assert chrome.event_data["stack"].count("\n") == 2  # frames stay one a line

    loaded = await service.load_events(
        db, [e.id for e in stored], since=ago(minutes=10), until=ago(minutes=0) + timedelta(minutes=1)
    )
    result = await service.group_events(db, loaded)
    await db.commit()
    assert result.occurrences == 2 and len(result.new_issues) == 1
    issue = await db.scalar(select(Issue))
    assert issue.frames == ["main.js", "main.js:submitPayment"]
    assert issue.title == "TypeError: cannot read property 'amount' of undefined"
    assert (issue.event_count, issue.session_count) == (2, 1)


async def test_a_stack_over_the_bound_is_refused_naming_the_field(client, db, site_key):
    too_long = event("error", data={"message": "boom", "stack": "x" * 2001})
    r = await client.post("/api/ingest/v1/events", json=batch(site_key, [too_long]), headers=headers())
    assert r.status_code == 400
    assert "stack" in r.text
    assert await db.scalar(select(SessionEvent.id)) is None
