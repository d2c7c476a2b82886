"""POST /api/ingest/v1/events: every answer of the contract, idempotency, atomicity and masking."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text

from supportlens.capture import sites
from supportlens.capture.views import RETRIES
from supportlens.sessions.models import SessionCustomerMapping, SessionEvent, UserSession
from tests.support.ingest import IPHONE_UA, ORIGIN, PROJECT, ago, batch, event, headers

URL = "/api/ingest/v1/events"


async def count(db: Any, model: Any) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)))


async def only_session(db: Any) -> UserSession:
    db.expire_all()
    return (await db.scalars(select(UserSession))).one()


async def test_batch_creates_session_with_counters(client, db, site_key):
    events = [
        event("navigation", at=ago(seconds=30), url=f"{ORIGIN}/"),
        event("click", at=ago(seconds=20), selector="button#pay", x=640, y=410, data={"text": "Pay"}),
        event("scroll", at=ago(seconds=15), data={"depth": 73}),
        event("error", at=ago(seconds=10), data={"message": "TypeError: x is undefined"}),
        event("rage_click", at=ago(seconds=9), selector="button#pay"),
        event("dead_click", at=ago(seconds=8), selector="button#pay"),
    ]
    r = await client.post(URL, json=batch(site_key, events), headers=headers())
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 6, "duplicates": 0}
    assert r.headers["access-control-allow-origin"] == ORIGIN
    s = await only_session(db)
    assert (s.clarity_project_id, s.clarity_user_id, s.clarity_session_id) == (PROJECT, "u1abc", "s1abc")
    assert (s.click_count, s.error_count, s.rage_click_count, s.dead_click_count) == (1, 1, 1, 1)
    assert s.event_count == 6 and s.max_scroll_depth == 73
    assert s.entry_url == f"{ORIGIN}/" and s.exit_url == f"{ORIGIN}/pay"
    assert 21 <= s.duration_seconds <= 23
    assert s.page_views == 1
    assert s.recording_url == f"https://clarity.microsoft.com/player/{PROJECT}/u1abc/s1abc"
    assert s.client_ip == "127.0.0.1"
    assert (s.device_type, s.browser, s.os) == ("desktop", "Chrome", "Windows")
    assert await count(db, SessionEvent) == 6


async def test_text_plain_and_second_batch_update_the_same_session(client, db, site_key):
    first = batch(site_key, [event("navigation", at=ago(minutes=5), url=f"{ORIGIN}/a")], page_num=1)
    r = await client.post(URL, content=json.dumps(first), headers={**headers(), "Content-Type": "text/plain"})
    assert r.status_code == 202, r.text
    second = batch(
        site_key,
        [event("navigation", at=ago(minutes=1), url=f"{ORIGIN}/b"), event("click", at=ago(seconds=50))],
        page_num=3,
    )
    h = {**headers(ua=IPHONE_UA), "Content-Type": "text/plain;charset=UTF-8"}
    r = await client.post(URL, content=json.dumps(second), headers=h)
    assert r.status_code == 202, r.text
    s = await only_session(db)
    assert s.page_views == 3 and s.navigation_count == 2 and s.click_count == 1
    assert s.entry_url == f"{ORIGIN}/a" and s.exit_url == f"{ORIGIN}/pay"
    assert 4 * 60 - 5 <= s.duration_seconds <= 4 * 60 + 15
    assert s.device_type == "mobile" and s.os == "iOS"


async def test_duplicates_are_idempotent(client, db, site_key):
    events = [event("click"), event("navigation"), event("error")]
    body = batch(site_key, events)
    assert (await client.post(URL, json=body, headers=headers())).json() == {"accepted": 3, "duplicates": 0}
    again = await client.post(URL, json=body, headers=headers())
    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 3}
    mixed = batch(site_key, [events[0], event("click")])
    assert (await client.post(URL, json=mixed, headers=headers())).json() == {"accepted": 1, "duplicates": 1}
    s = await only_session(db)
    assert (s.event_count, s.click_count, s.error_count, s.navigation_count) == (4, 2, 1, 1)
    assert await count(db, SessionEvent) == 4


async def test_an_event_id_repeated_inside_one_batch_is_one_event(client, db, site_key):
    error = event("error", data={"message": "TypeError: x is undefined"})
    r = await client.post(URL, json=batch(site_key, [error, error, error]), headers=headers())
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "duplicates": 2}
    s = await only_session(db)
    assert (s.event_count, s.error_count) == (1, 1)
    assert await count(db, SessionEvent) == 1


async def test_a_repeat_inside_a_batch_of_an_event_already_stored_counts_once(client, db, site_key):
    click, nav = event("click"), event("navigation")
    assert (await client.post(URL, json=batch(site_key, [click]), headers=headers())).status_code == 202
    # The same id a second time with another time and type: the first one stored is the event.
    moved = {**click, "type": "error", "ts": nav["ts"]}
    r = await client.post(URL, json=batch(site_key, [click, nav, moved, nav]), headers=headers())
    assert r.json() == {"accepted": 1, "duplicates": 3}
    s = await only_session(db)
    assert (s.event_count, s.click_count, s.error_count, s.navigation_count) == (2, 1, 0, 1)
    assert s.page_views == 1
    assert await count(db, SessionEvent) == 2


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("siteKey"), "siteKey"),
        (lambda b: b["events"][0].update(type="keylogger"), "events.0.type"),
        (lambda b: b["events"][0].update(selector="x" * 513), "events.0.selector"),
        (lambda b: b["events"][0].update(id="not-a-uuid"), "events.0.id"),
        (lambda b: b["events"][0].update(x="640"), "events.0.x"),
        (lambda b: b["events"][0].update(data={"k" * 41: 1}), "events.0.data"),
        (lambda b: b["events"][0].update(data={"text": "y" * 2001}), "events.0.data"),
        (lambda b: b["events"][0].update(data={"nested": {"a": 1}}), "events.0.data.nested"),
        (lambda b: b["clarity"].update(sessionId="a b"), "clarity.sessionId"),
        (lambda b: b["page"].update(url="u" * 2049), "page.url"),
        (lambda b: b.update(extra=1), "extra"),
        (lambda b: b["customer"].update(email="not-an-email"), "customer.email"),
        (lambda b: b["events"][0].update(ts="2001-01-01T00:00:00Z"), "events.0.ts"),
    ],
)
async def test_invalid_batch_is_400_naming_the_field_and_stores_nothing(client, db, site_key, mutate, field):
    body = batch(site_key, [event("click"), event("click")], customer={"email": "jane@acme.io"})
    mutate(body)
    r = await client.post(URL, json=body, headers=headers())
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert await count(db, UserSession) == 0 and await count(db, SessionEvent) == 0


async def test_not_json_and_too_many_events(client, site_key):
    r = await client.post(URL, content=b"{not json", headers={**headers(), "Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    r = await client.post(URL, json=batch(site_key, [event("click") for _ in range(501)]), headers=headers())
    assert r.status_code == 400 and r.json()["field"] == "events"
    r = await client.post(URL, content=b"{}", headers={**headers(), "Content-Type": "application/xml"})
    assert r.status_code == 415


async def test_unknown_or_revoked_site_key_is_401(client, db, site_key):
    r = await client.post(URL, json=batch("pk_live_unknownkey123", [event()]), headers=headers())
    assert r.status_code == 401 and r.json()["field"] == "siteKey"
    site = (await sites.list_sites(db))[0]
    await sites.revoke_site(db, site.id)
    r = await client.post(URL, json=batch(site_key, [event()]), headers=headers())
    assert r.status_code == 401
    assert await count(db, SessionEvent) == 0


async def test_origin_not_allowed_is_403_without_cors(client, db, site_key):
    for h in (headers(origin="https://evil.example"), {"Content-Type": "application/json"}):
        r = await client.post(URL, json=batch(site_key, [event()]), headers=h)
        assert r.status_code == 403
        assert "access-control-allow-origin" not in r.headers
    assert await count(db, UserSession) == 0


async def test_consent_required_and_refused(client, db, consent_site_key, site_key):
    eu = {**headers(origin="https://eu.shop.example")}
    for consent in (None, False):
        r = await client.post(URL, json=batch(consent_site_key, [event()], consent=consent), headers=eu)
        assert r.status_code == 403, r.text
        assert r.json()["field"] == "consent.analytics"
    # an explicit "no" is honoured even where the site does not require consent
    r = await client.post(URL, json=batch(site_key, [event()], consent=False), headers=headers())
    assert r.status_code == 403
    assert await count(db, UserSession) == 0 and await count(db, SessionEvent) == 0
    r = await client.post(URL, json=batch(consent_site_key, [event()], consent=True), headers=eu)
    assert r.status_code == 202
    assert (await only_session(db)).consent_analytics is True


async def test_body_over_256_kb_is_413_by_header_and_by_counting(client, db, site_key):
    big = batch(site_key, [event("custom", data={"t": "z" * 2000}) for _ in range(140)])
    raw = json.dumps(big).encode()
    assert len(raw) > 256 * 1024
    r = await client.post(URL, content=raw, headers=headers())
    assert r.status_code == 413

    async def chunks():  # no Content-Length: counted while reading
        for i in range(0, len(raw), 16384):
            yield raw[i : i + 16384]

    r = await client.post(URL, content=chunks(), headers=headers())
    assert r.status_code == 413
    assert await count(db, SessionEvent) == 0


async def test_cors_preflight_only_for_allowed_origins(client, site_key):
    ok = await client.options(
        URL,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"].lower()
    bad = await client.options(
        URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert bad.status_code == 403
    assert "access-control-allow-origin" not in bad.headers


JOBS = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'supportlens.map_session'"


async def mapping_jobs(db: Any) -> int:
    return int(await db.scalar(text(JOBS)))


class _Deadlock(Exception):
    pass


def _failing_store(real: Any, failures: int) -> Any:
    """The batch's statement, which then loses a deadlock `failures` times (after writing, before the
    commit)."""
    from sqlalchemy.exc import DBAPIError

    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        stored = await real(*args, **kwargs)
        if calls["n"] <= failures:
            raise DBAPIError("WITH s AS (INSERT INTO user_sessions ...", {}, _Deadlock("deadlock detected"))
        return stored

    flaky.calls = calls  # type: ignore[attr-defined]
    return flaky


async def test_rejected_batch_stores_nothing_and_enqueues_nothing_when_storage_fails_midway(
    client, db, site_key, monkeypatch
):
    from supportlens.capture import ingest

    real = ingest._store

    async def broken(*args, **kwargs):
        await real(*args, **kwargs)  # the batch, its jobs and its pending events are written ...
        raise RuntimeError("queue down")  # ... and the request fails before the commit

    monkeypatch.setattr(ingest, "_store", broken)
    body = batch(site_key, [event(), event("error", data={"message": "x"})])
    r = await client.post(URL, json=body, headers=headers())
    assert r.status_code == 500
    assert await count(db, UserSession) == 0 and await count(db, SessionEvent) == 0
    assert await mapping_jobs(db) == 0
    assert await db.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0
    assert await db.scalar(text("SELECT count(*) FROM issue_pending_events")) == 0


async def test_a_batch_that_loses_a_deadlock_is_replayed_and_enqueued_once(client, db, site_key, monkeypatch):
    from supportlens.capture import ingest

    flaky = _failing_store(ingest._store, failures=RETRIES - 1)
    monkeypatch.setattr(ingest, "_store", flaky)
    r = await client.post(URL, json=batch(site_key, [event(), event()]), headers=headers())
    assert r.status_code == 202, r.text
    assert flaky.calls["n"] == RETRIES
    assert await count(db, UserSession) == 1 and await count(db, SessionEvent) == 2
    assert await mapping_jobs(db) == 1


async def test_a_batch_that_keeps_losing_is_500_and_stores_nothing(client, db, site_key, monkeypatch):
    from supportlens.capture import ingest

    flaky = _failing_store(ingest._store, failures=99)
    monkeypatch.setattr(ingest, "_store", flaky)
    r = await client.post(URL, json=batch(site_key, [event(), event()]), headers=headers())
    assert r.status_code == 500
    assert r.json()["detail"] == "nothing was stored; retry later"
    assert flaky.calls["n"] == RETRIES
    assert await count(db, UserSession) == 0 and await count(db, SessionEvent) == 0
    assert await mapping_jobs(db) == 0


async def _uncommitted_batch(db: Any, key: str, session_id: str, **fields: Any) -> Any:
    """ingest_batch as the handler calls it, left uncommitted."""
    from supportlens.capture.ingest import ingest_batch
    from supportlens.capture.schemas import IngestBatch

    site = await sites.make_cache(0).by_key(db, key)
    body = IngestBatch.model_validate_json(json.dumps(batch(key, [event()], session_id=session_id, **fields)))
    return await ingest_batch(db, site, body, client_ip="81.2.3.4", user_agent=None, commit=False)


async def test_the_mapping_job_commits_and_rolls_back_with_its_batch(db, sessionmaker, site_key):
    async with sessionmaker() as ingest_db:
        await _uncommitted_batch(ingest_db, site_key, "s-rolled-back")
        assert await mapping_jobs(db) == 0  # not visible before the batch commits
        await ingest_db.rollback()
    assert await mapping_jobs(db) == 0
    async with sessionmaker() as ingest_db:
        await _uncommitted_batch(ingest_db, site_key, "s-stored")
        await ingest_db.commit()
    assert await mapping_jobs(db) == 1
    assert await count(db, UserSession) == 1


async def test_a_database_error_in_the_statement_leaves_nothing_and_the_session_stores_the_retry(
    db, sessionmaker, site_key, monkeypatch
):
    """The statement runs on the driver's connection inside the session's transaction: a real error
    raised by PostgreSQL after its writes (not a simulated one) comes out as SQLAlchemy's DBAPIError,
    which the handler replays, and the rollback takes back the session, the events and the jobs."""
    from sqlalchemy.exc import DBAPIError

    from supportlens.capture import ingest

    # Division by zero once the events' insert has run: an error at execution, after the writes.
    failing = ingest._STORE_SQL + " WHERE 1 / (SELECT count(*) - count(*) FROM e) = 1"
    monkeypatch.setattr(ingest, "_STORE_SQL", failing)
    async with sessionmaker() as ingest_db:
        with pytest.raises(DBAPIError, match="division by zero"):
            await _uncommitted_batch(ingest_db, site_key, "s-fails")
        await ingest_db.rollback()
        assert await count(db, UserSession) == 0 and await count(db, SessionEvent) == 0
        assert await db.scalar(text("SELECT count(*) FROM procrastinate_jobs")) == 0
        monkeypatch.undo()
        await _uncommitted_batch(ingest_db, site_key, "s-fails")
        await ingest_db.commit()
    assert await count(db, UserSession) == 1 and await count(db, SessionEvent) == 1
    assert await mapping_jobs(db) == 1


async def test_a_burst_of_one_session_waits_as_one_job_per_sign_in(client, db, site_key):
    for _ in range(3):
        assert (await client.post(URL, json=batch(site_key, [event()]), headers=headers())).status_code == 202
    assert await mapping_jobs(db) == 1
    who = {"email": "jane@acme.io"}
    for _ in range(2):
        r = await client.post(URL, json=batch(site_key, [event()], customer=who), headers=headers())
        assert r.status_code == 202
    # Another sign-in is another fact for the engine: its own job. Another session: its own job.
    assert await mapping_jobs(db) == 2
    r = await client.post(URL, json=batch(site_key, [event()], session_id="other"), headers=headers())
    assert r.status_code == 202
    assert await mapping_jobs(db) == 3


async def test_a_job_a_batch_rides_on_waits_for_that_batch_to_commit(db, sessionmaker, site_key):
    """The coalescing batch locks the waiting job until it commits: no worker maps without its events."""

    fetch = text("SELECT id FROM procrastinate_fetch_job_v2(ARRAY['mapping']::varchar[], NULL)")
    async with sessionmaker() as first:
        await _uncommitted_batch(first, site_key, "s1")
        await first.commit()
    async with sessionmaker() as rider, sessionmaker() as worker:
        await _uncommitted_batch(rider, site_key, "s1")
        assert await worker.scalar(fetch) is None  # the one job is locked by the batch riding on it
        await worker.rollback()
        await rider.commit()
        assert await worker.scalar(fetch) is not None
        await worker.rollback()


async def test_pii_is_masked_before_storage(client, db, site_key):
    e = event(
        "click",
        url=f"{ORIGIN}/account?email=jane%40acme.io&phone=%2B1%20415-555-2671&order=100234567",
        selector="tr[data-card='4111 1111 1111 1111'] > td.email-jane@acme.io",
        data={
            "text": "Call me on (415) 555-2671 or jane.doe@acme.io, card 4242-4242-4242-4242, "
            "order ORD-20261126-0042"
        },
    )
    r = await client.post(
        URL, json=batch(site_key, [e], customer={"email": "Jane@Acme.io"}), headers=headers()
    )
    assert r.status_code == 202
    stored = (await db.scalars(select(SessionEvent))).one()
    text = json.dumps([stored.page_url, stored.element_selector, stored.event_data])
    for secret in ("jane@acme.io", "jane.doe", "555-2671", "4111 1111", "4242-4242"):
        assert secret not in text
    assert "[email]" in stored.page_url and "[phone]" in stored.page_url
    assert "order=100234567" in stored.page_url  # order ids survive
    assert "ORD-20261126-0042" in stored.event_data["text"]
    assert "[card]" in stored.element_selector and "[card]" in stored.event_data["text"]
    s = await only_session(db)
    assert s.customer_email == "jane@acme.io"  # the identification itself is kept (it is the link)
    assert "jane" not in (s.entry_url or "")


async def test_identified_batch_gets_email_match_link(client, db, site_key, worker):
    who = {"email": "jane@acme.io", "id": "cus_123", "name": "Jane Doe"}
    r = await client.post(URL, json=batch(site_key, [event()], customer=who), headers=headers())
    assert r.status_code == 202
    await worker.drained()
    link = (await db.scalars(select(SessionCustomerMapping))).one()
    assert (link.customer_email, link.mapping_method, link.confidence_score) == (
        "jane@acme.io",
        "email_match",
        1.0,
    )
    s = await only_session(db)
    assert (s.customer_name, s.customer_external_id) == ("Jane Doe", "cus_123")


async def test_missing_project_id_falls_back_to_the_sites_project(client, db, site_key):
    body = batch(site_key, [event()])
    body["clarity"]["projectId"] = ""
    assert (await client.post(URL, json=body, headers=headers())).status_code == 202
    assert (await only_session(db)).clarity_project_id == PROJECT


async def test_unique_event_ids_across_sessions(client, db, site_key):
    shared = event()
    await client.post(URL, json=batch(site_key, [shared], session_id="sA"), headers=headers())
    r = await client.post(URL, json=batch(site_key, [shared, event()], session_id="sB"), headers=headers())
    assert r.json() == {"accepted": 1, "duplicates": 1}
    assert uuid.UUID(shared["id"])


async def test_erasure_removes_the_e_mail_from_mapping_jobs_not_yet_run(client, db, site_key):
    from supportlens.mapping import decisions

    who = {"email": "jane@acme.io"}
    assert (
        await client.post(URL, json=batch(site_key, [event()], customer=who), headers=headers())
    ).status_code == 202
    assert (
        await client.post(URL, json=batch(site_key, [event()], session_id="anon"), headers=headers())
    ).status_code == 202
    await decisions.forget_customer(db, "Jane@Acme.io")
    await db.commit()
    left = (await db.execute(text("SELECT args::text FROM procrastinate_jobs"))).scalars().all()
    assert len(left) == 1 and "jane@acme.io" not in left[0]  # the other session's job stays
