"""Spike alerts end to end: detection over stored counts (once, with a cool-down), the signed
webhook (a receiver verifies the HMAC), retries and redirects, and the admin's configuration."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from sqlalchemy import func, select, text

from supportlens.audit.models import AuditEntry
from supportlens.issues import alerts
from supportlens.issues.alert_models import AlertDelivery, AlertWebhook, SpikeAlert
from supportlens.issues.models import Issue, IssueBucket

SECRET = "s3cret-signing-key-for-tests"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def settings(settings_factory):
    return settings_factory(alert_webhook_retry_wait_seconds=0)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


async def _issue_with_counts(db, counts: list[int], title: str = "TypeError: x is undefined") -> Issue:
    issue = Issue(
        fingerprint=f"fp-{title}"[:64],
        kind="error",
        title=title,
        page="/pay",
        first_seen=START,
        last_seen=START,
    )
    db.add(issue)
    await db.flush()
    for i, n in enumerate(counts):
        if n:
            db.add(
                IssueBucket(issue_id=issue.id, page="/pay", bucket_start=START + i * alerts.BUCKET, count=n)
            )
    await db.commit()
    return issue


async def _hook(db, settings, url="https://hooks.example.com/T1") -> None:
    await alerts.save_webhook(db, settings, url=url, secret=SECRET, enabled=True, agent_id=None)
    await db.commit()


def test_signature_round_trip_and_tampering():
    body = b'{"text":"hi"}'
    header = alerts.sign(SECRET, body, 1_700_000_000)
    assert alerts.verify(SECRET, body, header, now=1_700_000_010)
    assert not alerts.verify(SECRET, body + b" ", header, now=1_700_000_010)  # body changed
    assert not alerts.verify("another-secret-of-length", body, header, now=1_700_000_010)
    assert not alerts.verify(SECRET, body, header, now=1_700_000_000 + 3600)  # replayed later
    assert not alerts.verify(SECRET, body, "garbage", now=1_700_000_000)


async def test_a_spike_alerts_once_and_a_receiver_verifies_the_signature(db, sessionmaker, settings):
    rng = random.Random(4)
    day = 2 * 288  # two days of history: one shows the day's rhythm, the next how bursty it is
    counts = [_poisson(rng, 2.0) for _ in range(day)] + [_poisson(rng, 10.0) for _ in range(12)]
    issue = await _issue_with_counts(db, counts, title="<script>alert(1)</script> failed")
    await _hook(db, settings)

    # First run: the days of history are replayed (learning the baseline), nothing is due yet.
    assert await alerts.detect(db, now=START + day * alerts.BUCKET + timedelta(seconds=30)) == []
    # Bucket by bucket through the rise, as the schedule would run; and each run twice.
    raised = []
    for i in range(1, 13):
        now = START + (day + i) * alerts.BUCKET + timedelta(seconds=30)
        raised += await alerts.detect(db, now=now)
        assert await alerts.detect(db, now=now) == []  # a repeated run feeds nothing twice
    # One alert per series (the issue, and its page: here the page's only issue), then quiet
    # while the level stays high.
    assert sorted(a.series_key for a in raised) == [f"issue:{issue.id}", "page:/pay"]
    stored = (await db.scalars(select(SpikeAlert))).all()
    assert len(stored) == 2
    assert await db.scalar(select(func.count()).select_from(AlertDelivery)) == len(stored)

    received: list[httpx2.Request] = []

    def receiver(request: httpx2.Request) -> httpx2.Response:
        received.append(request)
        ok = alerts.verify(SECRET, request.content, request.headers[alerts.SIGNATURE_HEADER])
        return httpx2.Response(204 if ok else 401)

    delivered = await alerts.deliver_pending(sessionmaker, settings, transport=httpx2.MockTransport(receiver))
    assert delivered == len(stored) and len(received) == len(stored)
    payload = json.loads(received[0].content)
    assert payload["text"].startswith("Spiking now:") and payload["kind"] == "spike"
    async with sessionmaker() as s2:
        rows = (await s2.scalars(select(AlertDelivery))).all()
        assert {r.status for r in rows} == {"delivered"} and {r.attempts for r in rows} == {1}
    # Delivered once: another sweep sends nothing.
    assert await alerts.deliver_pending(sessionmaker, settings, transport=httpx2.MockTransport(receiver)) == 0
    assert len(received) == len(stored)


async def test_failures_are_retried_and_redirects_not_followed(db, sessionmaker, settings):
    await _hook(db, settings)
    await alerts.enqueue(db, kind="test", dedup_key="t1", payload={"text": "one"})
    await db.commit()
    answers = iter([503, 500, 200])

    def flaky(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(next(answers))

    assert await alerts.deliver_pending(sessionmaker, settings, transport=httpx2.MockTransport(flaky)) == 1
    async with sessionmaker() as s2:
        row = (await s2.scalars(select(AlertDelivery))).one()
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)

    await alerts.enqueue(db, kind="test", dedup_key="t2", payload={"text": "two"})
    await db.commit()
    followed: list[str] = []

    def redirecting(request: httpx2.Request) -> httpx2.Response:
        followed.append(str(request.url))
        return httpx2.Response(302, headers={"Location": "http://169.254.169.254/latest/meta-data"})

    assert (
        await alerts.deliver_pending(sessionmaker, settings, transport=httpx2.MockTransport(redirecting)) == 0
    )
    assert followed == ["https://hooks.example.com/T1"]
    async with sessionmaker() as s2:
        row = (await s2.scalars(select(AlertDelivery).where(AlertDelivery.dedup_key == "t2"))).one()
        assert (row.status, row.last_status_code) == ("failed", 302)


@pytest.mark.parametrize(
    ("url", "production"),
    [
        ("javascript:alert(1)", False),
        ("ftp://hooks.example.com/x", False),
        ("https://user:pw@hooks.example.com/x", False),
        ("https://hooks.example.com/x y", False),
        ("http://hooks.example.com/x", True),
        ("https://169.254.169.254/latest", True),
        ("https://localhost/x", True),
        ("https://" + "a" * 600 + ".com", False),
    ],
)
def test_hostile_urls_are_refused_naming_the_field(url, production):
    with pytest.raises(alerts.WebhookConfigError) as info:
        alerts.validate_url(url, production=production)
    assert info.value.field == "url"


async def test_admin_configures_the_webhook_and_others_cannot(signed_in, sessionmaker):
    for role in ("viewer", "agent"):
        other = await signed_in(role)
        resp = await other.client.post(
            "/admin/alerts", data={"url": "https://evil.example/x", "secret": SECRET}, headers=other.headers()
        )
        assert resp.status_code == 403
    admin = await signed_in("admin")
    bad = await admin.client.post(
        "/admin/alerts", data={"url": "javascript:alert(1)", "secret": SECRET}, headers=admin.headers()
    )
    assert bad.status_code == 400 and bad.json()["field"] == "url"
    short = await admin.client.post(
        "/admin/alerts",
        data={"url": "https://hooks.example.com/T1", "secret": "short"},
        headers=admin.headers(),
    )
    assert short.status_code == 400 and short.json()["field"] == "secret"
    ok = await admin.client.post(
        "/admin/alerts",
        data={"url": "https://hooks.example.com/T1/secret-path", "secret": SECRET, "enabled": "1"},
        headers=admin.headers(),
    )
    assert ok.status_code == 303
    async with sessionmaker() as db:
        hook = await db.get(AlertWebhook, 1)
        assert hook is not None and hook.enabled and SECRET not in hook.secret_encrypted
        raw = await db.scalar(text("SELECT alert_webhook::text FROM alert_webhook"))
        assert SECRET not in raw
        entries = (
            await db.scalars(
                select(AuditEntry).where(AuditEntry.action == "alert_webhook_saved").order_by(AuditEntry.id)
            )
        ).all()
        assert [e.outcome for e in entries] == ["refused", "refused", "ok"]
        assert entries[-1].target == "hooks.example.com" and "secret-path" not in json.dumps(
            entries[-1].detail
        )
    page = await admin.client.get("/admin/alerts", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "https://hooks.example.com/T1/secret-path" in page.text
    assert SECRET not in page.text


async def test_spiking_now_on_the_home_page_is_escaped(db, signed_in, settings):
    rng = random.Random(9)
    counts = [_poisson(rng, 2.0) for _ in range(576)] + [_poisson(rng, 12.0) for _ in range(3)]
    await _issue_with_counts(db, counts, title="<img src=x onerror=alert(1)> at /pay")
    for i in range(0, 4):
        await alerts.detect(db, now=START + (576 + i) * alerts.BUCKET + timedelta(seconds=30))
    viewer = await signed_in("viewer")
    resp = await viewer.client.get("/issues/spiking", headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert "Spiking now" in resp.text
    assert "<img src=x" not in resp.text and "&lt;img src=x onerror=alert(1)&gt; at /pay" in resp.text


async def test_the_schedule_detects_and_delivers_to_a_real_receiver(db, settings, engine, sessionmaker):
    """Through the task queue and a real socket: a receiver verifies every request's HMAC."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from supportlens.tasks import schedule
    from supportlens.tasks.queue import Runtime
    from tests.support.queue import run_periodic_now

    got: list[tuple[bool, dict]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = alerts.verify(SECRET, body, self.headers.get(alerts.SIGNATURE_HEADER, ""))
            got.append((ok, json.loads(body)))
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        now = datetime.now(tz=UTC)
        last_closed = alerts._floor(now) - alerts.BUCKET
        rng = random.Random(2)
        counts = [_poisson(rng, 2.0) for _ in range(576)] + [40]
        first = last_closed - 576 * alerts.BUCKET
        issue = Issue(
            fingerprint="fp-sched",
            kind="error",
            title="Payment failed",
            page="/pay",
            first_seen=first,
            last_seen=now,
        )
        db.add(issue)
        await db.flush()
        for i, n in enumerate(counts):
            if n:
                db.add(
                    IssueBucket(
                        issue_id=issue.id, page="/pay", bucket_start=first + i * alerts.BUCKET, count=n
                    )
                )
        await db.commit()
        await _hook(db, settings, url=f"http://127.0.0.1:{server.server_port}/hook")
        runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
        await run_periodic_now(runtime, [schedule.SPIKES_TASK])
        await run_periodic_now(runtime, [schedule.SPIKES_TASK])  # a second run raises nothing new
        await run_periodic_now(runtime, [schedule.ALERT_DELIVERIES_TASK])
    finally:
        server.shutdown()
    assert len(got) == 2 and all(ok for ok, _ in got)  # the issue and its page
    assert any(p["issue_id"] == issue.id and "Payment failed" in p["text"] for _, p in got)
