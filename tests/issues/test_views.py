"""The issues API and pages: filters, paging, masking for viewers, status changes with their audit, the
failed transfers near an issue (Dwolla simulator), and "is it only them?" on the search summary."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from supportlens.audit.models import AuditEntry
from supportlens.config import Settings
from supportlens.issues.models import Issue
from supportlens.sessions.models import SessionEvent, UserSession
from supportlens_sandbox.world import demo_world
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)
from tests.investigation.seed import seed_checkout_session
from tests.issues.helpers import group_everything

NOW = datetime.now(UTC).replace(microsecond=0)
AMOUNT = "TypeError: Cannot read properties of undefined (reading 'amount')"
HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], sims: Sims) -> Settings:  # noqa: F811
    return settings_factory(**sims.settings(), search_source_deadline_seconds=5.0)


async def a_session(db: Any, email: str | None, start: datetime) -> UserSession:
    s = UserSession(
        clarity_project_id="p1",
        clarity_user_id=f"dev-{uuid.uuid4().hex[:8]}",
        clarity_session_id=uuid.uuid4().hex[:12],
        session_start=start,
        session_end=start + timedelta(minutes=20),
        customer_email=email,
        browser="Chrome",
        device_type="desktop",
    )
    db.add(s)
    await db.flush()
    return s


async def an_event(db: Any, s: UserSession, kind: str, at: datetime, **kw: Any) -> SessionEvent:
    e = SessionEvent(
        id=uuid.uuid4(),
        session_id=s.id,
        event_type=kind,
        timestamp=at,
        page_url=kw.get("url", "https://shop.example/pay"),
        event_data=kw.get("data", {}),
        element_selector=kw.get("selector"),
    )
    db.add(e)
    await db.flush()
    return e


async def world(sessionmaker: Any) -> dict[str, int]:
    """Three customers hit the `amount` TypeError on /pay; one rage-clicks; one old error is resolved."""
    async with sessionmaker() as db:
        for n, email in enumerate(["ann@acme.io", "bob@acme.io", "cy@acme.io"]):
            s = await a_session(db, email, NOW - timedelta(hours=3))
            await an_event(db, s, "error", NOW - timedelta(hours=2, minutes=n), data={"message": AMOUNT})
        s = await a_session(db, "ann@acme.io", NOW - timedelta(hours=1))
        await an_event(db, s, "rage_click", NOW - timedelta(minutes=50), selector="button#pay")
        old = await a_session(db, None, NOW - timedelta(days=20))
        await an_event(db, old, "error", NOW - timedelta(days=20), data={"message": f"Error: {HOSTILE}"})
        await db.commit()
    await group_everything(sessionmaker)
    async with sessionmaker() as db:
        ids = {
            i.kind if i.last_seen > NOW - timedelta(days=1) else "old": i.id
            for i in (await db.scalars(select(Issue))).all()
        }
    return ids


async def test_list_filters_pages_and_orders_by_newest_activity(signed_in, sessionmaker) -> None:
    ids = await world(sessionmaker)
    viewer = await signed_in("viewer")
    body = (await viewer.client.get("/api/issues")).json()
    assert [i["id"] for i in body["items"]] == [ids["rage_click"], ids["error"], ids["old"]]
    error = body["items"][1]
    assert error["title"] == "TypeError: cannot read property 'amount' of undefined"
    assert (error["sessions"], error["customers"], error["status"], error["kind"]) == (3, 3, "new", "error")
    assert len(error["trend"]) == 24 and sum(error["trend"]) == 3 and error["failedTransfers"] is None
    assert set(error) >= {
        "id",
        "title",
        "kind",
        "fingerprint",
        "firstSeen",
        "lastSeen",
        "sessions",
        "customers",
    }

    since = (NOW - timedelta(days=1)).isoformat()
    recent = (await viewer.client.get("/api/issues", params={"since": since})).json()
    assert [i["id"] for i in recent["items"]] == [ids["rage_click"], ids["error"]]
    clicks = (await viewer.client.get("/api/issues", params={"kind": "rage_click"})).json()
    assert [i["id"] for i in clicks["items"]] == [ids["rage_click"]]
    bad = await viewer.client.get("/api/issues", params={"status": "closed"})
    assert bad.status_code == 400 and bad.json()["field"] == "status"
    assert (await viewer.client.get("/api/issues", params={"since": "yesterday"})).json()["field"] == "since"
    assert (await viewer.client.get("/api/issues", params={"page": 0})).status_code == 400


async def test_paging(signed_in, sessionmaker) -> None:
    async with sessionmaker() as db:
        s = await a_session(db, None, NOW - timedelta(hours=2))
        for n in range(27):  # 27 distinct messages on one page: 27 issues
            await an_event(
                db, s, "error", NOW - timedelta(minutes=n), data={"message": f"Error: step {'x' * n} broke"}
            )
        await db.commit()
    await group_everything(sessionmaker)
    agent = await signed_in("agent")
    first = (await agent.client.get("/api/issues")).json()
    assert len(first["items"]) == 25 and first["nextPage"] == 2
    second = (await agent.client.get("/api/issues", params={"page": 2})).json()
    assert len(second["items"]) == 2 and second["nextPage"] is None
    seen = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(seen)) == 27


async def test_one_issue_masks_customers_for_viewers_and_is_audited(signed_in, sessionmaker) -> None:
    ids = await world(sessionmaker)
    agent = await signed_in("agent")
    body = (await agent.client.get(f"/api/issues/{ids['error']}")).json()
    assert sorted(c["email"] for c in body["affectedCustomers"]) == [
        "ann@acme.io",
        "bob@acme.io",
        "cy@acme.io",
    ]
    assert len(body["examples"]) == 3
    example = body["examples"][0]
    assert example["link"] == f"/sessions/{example['sessionId']}?t={example['offsetMs']}"
    assert body["pages"] == [{"page": "/pay", "count": 3}]
    assert body["browsers"] == [{"browser": "Chrome", "sessions": 3}]
    assert sum(h["count"] for h in body["hourly"]) == 3

    viewer = await signed_in("viewer")
    masked = (await viewer.client.get(f"/api/issues/{ids['error']}")).json()
    emails = [c["email"] for c in masked["affectedCustomers"]]
    assert emails and all("acme.io" not in e or e.startswith(e[0] + "*") for e in emails)
    assert not any(e in {"ann@acme.io", "bob@acme.io", "cy@acme.io"} for e in emails)
    assert all(c["journey"] is None for c in masked["affectedCustomers"])
    page = (await viewer.client.get(f"/issues/{ids['error']}")).text
    assert "ann@acme.io" not in page and "bob@acme.io" not in page

    async with sessionmaker() as db:
        viewed = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "issue_viewed"))).all()
    assert len(viewed) == 3 and {v.target for v in viewed} == {str(ids["error"])}
    assert (await agent.client.get("/api/issues/999999")).status_code == 404


async def test_status_changes_are_checked_and_audited(signed_in, sessionmaker) -> None:
    ids = await world(sessionmaker)
    url = f"/api/issues/{ids['error']}"
    viewer = await signed_in("viewer")
    refused = await viewer.client.patch(
        url, json={"status": "acknowledged"}, headers={"x-csrf-token": viewer.csrf}
    )
    assert refused.status_code == 403
    agent = await signed_in("agent")
    csrf = {"x-csrf-token": agent.csrf}
    ok = await agent.client.patch(url, json={"status": "acknowledged", "reason": "looking"}, headers=csrf)
    assert ok.status_code == 200 and ok.json()["status"] == "acknowledged"
    again = await agent.client.patch(url, json={"status": "acknowledged"}, headers=csrf)
    assert again.status_code == 409 and again.json()["field"] == "status"
    assert "acknowledged can be set to resolved" in again.json()["detail"]
    unknown = await agent.client.patch(url, json={"status": "closed"}, headers=csrf)
    assert unknown.status_code == 400 and unknown.json()["field"] == "status"
    extra = await agent.client.patch(url, json={"status": "resolved", "owner": "me"}, headers=csrf)
    assert extra.status_code == 400 and extra.json()["field"] == "owner"
    assert (
        await agent.client.patch("/api/issues/999999", json={"status": "resolved"}, headers=csrf)
    ).status_code == 404
    # The page's form resolves it (CSRF in the form), then the list shows it resolved.
    form = await agent.client.post(
        f"/issues/{ids['error']}/status", data={"status": "resolved", "csrf_token": agent.csrf}
    )
    assert form.status_code == 303 and form.headers["location"] == f"/issues/{ids['error']}"
    listed = (await agent.client.get("/api/issues", params={"status": "resolved"})).json()
    assert [i["id"] for i in listed["items"]] == [ids["error"]]
    async with sessionmaker() as db:
        changes = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "issue.status"))).all()
    assert [(c.detail["from"], c.detail["to"]) for c in changes] == [
        ("new", "acknowledged"),
        ("acknowledged", "resolved"),
    ]
    assert all(c.actor_id == agent.agent.id and c.ip for c in changes)


async def test_pages_escape_ingested_text_and_filter(signed_in, sessionmaker) -> None:
    ids = await world(sessionmaker)
    agent = await signed_in("agent")
    listing = (await agent.client.get("/issues", params={"window": "all"})).text
    assert HOSTILE not in listing and "&lt;img src=x" in listing
    assert f'href="/issues/{ids["error"]}"' in listing and '<svg class="issue-spark"' in listing
    week = (await agent.client.get("/issues")).text
    assert f'data-issue-id="{ids["old"]}"' not in week and f'data-issue-id="{ids["error"]}"' in week
    page = (await agent.client.get(f"/issues/{ids['old']}")).text
    assert HOSTILE not in page and 'action="/issues/' in page
    assert (await agent.client.get("/issues", params={"window": "1y"})).status_code == 400


async def test_failed_transfers_within_30_minutes_come_from_dwolla_and_degrade_alone(
    signed_in,
    sessionmaker,
    sims: Sims,  # noqa: F811
) -> None:
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    failed = jane.failed_transfers[0]
    seeded = await seed_checkout_session(sessionmaker, start=failed.created - timedelta(seconds=360.5))
    await group_everything(sessionmaker)
    async with sessionmaker() as db:
        issue_id = (await db.execute(text("SELECT issue_id FROM issue_occurrences WHERE event_id = :e"),
                                     {"e": seeded.first("error").id})).scalar_one()  # fmt: skip
    agent = await signed_in("agent")
    body = (await agent.client.get(f"/api/issues/{issue_id}")).json()
    transfers = body["failedTransfers"]
    assert transfers["complete"] and transfers["count"] == 1
    [t] = transfers["items"]
    assert (t["code"], t["customer"], t["minutesApart"]) == ("R01", "jane@acme.io", 1)
    listed = (await agent.client.get("/api/issues", params={"kind": "error"})).json()
    assert listed["items"][0]["failedTransfers"] == 1  # kept for the list

    sims.dwolla.knobs(error_rate=1.0)
    async with sessionmaker() as db:  # a later occurrence: the search cache (0 s in tests) is not asked
        await db.execute(text("UPDATE issues SET failed_transfers = NULL"))
        await db.commit()
    degraded = await agent.client.get(f"/issues/{issue_id}")
    assert degraded.status_code == 200
    assert 'data-testid="issue-transfers-degraded"' in degraded.text and "Dwolla" in degraded.text
    assert 'data-testid="issue-example"' in degraded.text  # the rest of the page is there
    listed = (await agent.client.get("/api/issues", params={"kind": "error"})).json()
    assert listed["items"][0]["failedTransfers"] is None  # an incomplete count is not kept


async def test_is_it_only_them_on_the_search_summary(signed_in, sessionmaker) -> None:
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    seeded = await seed_checkout_session(
        sessionmaker, start=jane.failed_transfers[0].created - timedelta(seconds=360.5)
    )
    error_at = seeded.first("error").timestamp
    async with sessionmaker() as db:  # two other customers hit the same error, one of them twice
        for email in ["ann@acme.io", "bob@acme.io", "bob@acme.io"]:
            s = await a_session(db, email, error_at - timedelta(hours=1))
            await an_event(db, s, "error", error_at - timedelta(minutes=30), data={"message": AMOUNT})
        await db.commit()
    await group_everything(sessionmaker)
    agent = await signed_in("agent")
    body = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    assert len(body["summary"]["failures"]) == 1, body["summary"]
    [failure] = body["summary"]["failures"]
    error = failure["moments"][-1]
    assert error["kind"] == "error"
    issue = error["issue"]
    assert issue["otherCustomers"] == 2 and issue["link"] == f"/issues/{issue['id']}"
    assert issue["title"] == "TypeError: cannot read property 'amount' of undefined"
    html = (await agent.client.get("/search/panel/summary", params={"q": "jane@acme.io"})).text
    assert 'data-testid="only-them"' in html and "2 other customers since" in html
    assert f'href="/issues/{issue["id"]}"' in html

    # The session page and the journey say the same, each with one query for the page.
    session_page = (await agent.client.get(f"/sessions/{seeded.id}")).text
    assert 'data-testid="session-issues"' in session_page and "2 other customers since" in session_page
    day = error_at.date().isoformat()
    journey = (
        await agent.client.get("/customers/jane@acme.io/journey", params={"from": day, "to": day})
    ).text
    assert 'data-testid="only-them"' in journey and f'href="/issues/{issue["id"]}"' in journey
