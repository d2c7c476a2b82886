"""The Needs attention loop end to end: a transfer fails in the Dwolla simulator → its signed webhook
reaches the app on a real port → the app's worker reads the transfer and customer from the simulator,
finds the session moment before the failure and makes one case → agents see, take and close it through
the API (viewers read it masked), every change audited, erasure removes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from supportlens.app import create_app
from supportlens.attention.models import AttentionCase, DwollaWebhookEvent
from supportlens.attention.service import erase_customer, pick_moment
from supportlens.audit.models import AuditEntry
from supportlens.issues.trouble import Moment
from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import demo_world
from tests.investigation.seed import seed_checkout_session
from tests.support.live import LiveServer

SECRET = "whsec-loop-2b7e"
WORLD = demo_world()
JANE = WORLD.customer("jane@acme.io")


def other_customer() -> Any:
    """A customer with a bank account and no sessions in this test."""
    return next(
        c
        for c in WORLD.dwolla_customers
        if c.dwolla_id
        and c.dwolla_id != JANE.dwolla_id
        and any(fs.type == "bank" and not fs.removed for fs in c.funding_sources)
    )


@pytest.fixture
def dwolla_sim() -> Iterator[tuple[Any, LiveServer]]:
    app = create_dwolla_app(WORLD, Knobs(webhook_retry_scale=0.0001))
    with LiveServer(app) as live:
        yield app, live


@pytest.fixture
def settings(settings_factory: Any, dwolla_sim: Any) -> Any:
    return settings_factory(
        dwolla_webhook_secret=SECRET,
        dwolla_base_url=dwolla_sim[1].url,
        dwolla_key=DWOLLA_KEY,
        dwolla_secret=DWOLLA_SECRET,
    )


@pytest.fixture
def live_app(settings: Any, engine: Any, dwolla_sim: Any) -> Iterator[LiveServer]:
    """The app as `supportlens serve` runs it (with its worker), subscribed at the simulator."""
    app_settings = settings.model_copy(update={"run_worker": True, "run_schedule": False})
    with LiveServer(create_app(app_settings)) as server:
        dwolla_sim[0].state.webhooks.subscribe(f"{server.url}/api/webhooks/dwolla", SECRET)
        yield server


async def fail_transfer(sim: LiveServer, customer_id: str, amount: str, code: str = "R01") -> dict[str, Any]:
    async with httpx2.AsyncClient(base_url=sim.url) as c:
        answer = await c.post(
            "/__sandbox/transfer-failures", json={"customerId": customer_id, "amount": amount, "code": code}
        )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def case_for(sessionmaker: Any, transfer_id: str, within: float = 30.0) -> tuple[AttentionCase, float]:
    started = time.monotonic()
    while time.monotonic() - started < within:
        async with sessionmaker() as db:
            found = await db.scalar(select(AttentionCase).where(AttentionCase.transfer_id == transfer_id))
        if found is not None:
            return found, time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"no case for transfer {transfer_id} within {within} s")


async def test_a_failed_transfer_becomes_one_case_with_its_moment(
    dwolla_sim: Any, live_app: LiveServer, sessionmaker: Any, signed_in: Any
) -> None:
    now = datetime.now(UTC)
    seeded = await seed_checkout_session(sessionmaker, email="jane@acme.io", start=now - timedelta(minutes=6))
    error = seeded.first("error")
    jane = await fail_transfer(dwolla_sim[1], JANE.dwolla_id, "80.00", "R01")
    other = other_customer()
    later = await fail_transfer(dwolla_sim[1], other.dwolla_id, "12.50", "R03")

    case, _ = await case_for(sessionmaker, jane["transferId"])  # the 5 s figure: tests/e2e/test_attention.py
    assert case.customer_email == "jane@acme.io" and case.customer_name == "Jane Doe"
    assert (case.amount, case.failure_code, case.status) == ("80.00", "R01", "open")
    assert case.moment_kind == "error" and case.moment_session_id == seeded.id
    assert case.moment_at == error.timestamp
    assert case.moment_offset_ms == 300_500  # the error is 300.5 s into the session
    second, _ = await case_for(sessionmaker, later["transferId"])
    assert second.moment_kind is None and second.failure_code == "R03"

    agent = await signed_in("agent")
    listed = (await agent.client.get("/api/attention?status=open")).json()["items"]
    # the case with a session error comes first, although the other failed later
    assert [i["transferId"] for i in listed] == [jane["transferId"], later["transferId"]]
    first = listed[0]
    assert first["customerEmail"] == "jane@acme.io"
    assert first["amount"] == "80.00" and first["failureCode"] == "R01"
    assert first["moment"] == {"sessionId": str(seeded.id), "atMs": 300_500, "kind": "error"}
    assert first["status"] == "open" and first["assignee"] is None
    assert "insufficient funds" in first["failureMeaning"]
    assert listed[1]["moment"] is None

    # Dwolla's retries of a delivered event, and a second topic for the same transfer, make no second case
    async with sessionmaker() as db:
        events = (await db.scalars(select(DwollaWebhookEvent))).all()
        cases = (await db.scalars(select(AttentionCase))).all()
    assert len(events) == 2 and {e.outcome for e in events} == {"case"}
    assert len(cases) == 2


async def test_take_and_close_with_roles_masking_and_audit(
    dwolla_sim: Any, live_app: LiveServer, sessionmaker: Any, signed_in: Any
) -> None:
    made = await fail_transfer(dwolla_sim[1], JANE.dwolla_id, "42.00", "R02")
    case, _ = await case_for(sessionmaker, made["transferId"])
    cid = str(case.id)

    viewer = await signed_in("viewer")
    seen = (await viewer.client.get("/api/attention")).json()["items"]
    assert seen[0]["customerEmail"] == "j***@acme.io"
    assert (
        await viewer.client.post(f"/api/attention/{cid}/take", headers=viewer.headers())
    ).status_code == 403

    sam = await signed_in("agent", email="sam@support.example")
    kim = await signed_in("agent", email="kim@support.example")
    taken = await sam.client.post(f"/api/attention/{cid}/take", headers=sam.headers())
    assert taken.status_code == 200 and taken.json()["status"] == "taken"
    assert (await kim.client.post(f"/api/attention/{cid}/take", headers=kim.headers())).status_code == 409
    assert (await kim.client.post(f"/api/attention/{cid}/close", headers=kim.headers())).status_code == 409
    listed = (await sam.client.get("/api/attention?status=taken")).json()["items"]
    assert [(i["id"], i["assignee"]) for i in listed] == [(cid, sam.agent.email)]
    assert (await sam.client.get("/api/attention?status=open")).json()["items"] == []
    closed = await sam.client.post(f"/api/attention/{cid}/close", headers=sam.headers())
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = await sam.client.post(f"/api/attention/{cid}/close", headers=sam.headers())
    assert again.status_code == 409

    bad = await sam.client.get("/api/attention?status=everything")
    assert bad.status_code == 400 and bad.json()["field"] == "status"
    assert (await sam.client.post("/api/attention/not-a-uuid/take", headers=sam.headers())).json()[
        "field"
    ] == "case_id"

    async with sessionmaker() as db:
        actions = (
            await db.scalars(
                select(AuditEntry.action).where(AuditEntry.target == cid).order_by(AuditEntry.id)
            )
        ).all()
        viewed = await db.scalar(select(AuditEntry).where(AuditEntry.action == "attention.view").limit(1))
    assert list(actions) == ["attention.take", "attention.close"]
    assert viewed is not None and "jane" not in str(viewed.detail)


async def test_the_home_page_shows_the_queue_and_polls_without_rereading(
    dwolla_sim: Any, live_app: LiveServer, sessionmaker: Any, signed_in: Any
) -> None:
    made = await fail_transfer(dwolla_sim[1], JANE.dwolla_id, "19.99", "R01")
    await case_for(sessionmaker, made["transferId"])
    agent = await signed_in("agent")
    page = await agent.client.get("/partials/attention")
    assert page.status_code == 200
    assert "Jane Doe" in page.text and "$19.99" in page.text and "insufficient funds" in page.text
    version = page.text.split("/partials/attention?since=")[1].split('"')[0]
    unchanged = await agent.client.get(f"/partials/attention?since={version}")
    assert unchanged.status_code == 204
    home = await agent.client.get("/")
    assert 'id="attention-queue"' in home.text


async def test_erasure_deletes_the_customers_cases_and_events(
    dwolla_sim: Any, live_app: LiveServer, sessionmaker: Any
) -> None:
    made = await fail_transfer(dwolla_sim[1], JANE.dwolla_id, "5.00")
    kept = await fail_transfer(dwolla_sim[1], other_customer().dwolla_id, "6.00")
    await case_for(sessionmaker, made["transferId"])
    await case_for(sessionmaker, kept["transferId"])
    async with sessionmaker() as db:
        counts = await erase_customer(db, "jane@acme.io")
        await db.commit()
        left = (await db.scalars(select(AttentionCase.transfer_id))).all()
        events = (await db.scalars(select(DwollaWebhookEvent.resource_id))).all()
    assert counts == {"attention_cases": 1, "dwolla_webhook_events": 1}
    assert list(left) == [kept["transferId"]] and list(events) == [kept["transferId"]]


def test_pick_moment_prefers_an_error_then_the_latest_before_the_failure() -> None:
    t = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def m(kind: str, minutes_before: float) -> Moment:
        at = t - timedelta(minutes=minutes_before)
        return Moment("s", at - timedelta(minutes=1), at, kind, None, None, None)

    assert pick_moment(t, []) is None
    assert pick_moment(t, [m("error", 31), m("rage_click", -2)]) is None  # too early; after the failure
    assert pick_moment(t, [m("dead_click", 1), m("rage_click", 5)]) == m("rage_click", 5)
    assert pick_moment(t, [m("rage_click", 1), m("error", 20), m("error", 10)]) == m("error", 10)


async def test_an_admin_subscribes_the_app_at_dwolla(
    dwolla_sim: Any, settings: Any, signed_in: Any, sessionmaker: Any
) -> None:
    hub = dwolla_sim[0].state.webhooks
    before = set(hub.subscriptions)
    agent = await signed_in("agent")
    assert (await agent.client.post("/admin/webhooks", headers=agent.headers())).status_code == 403
    admin = await signed_in("admin")
    made = await admin.client.post("/admin/webhooks", headers=admin.headers())
    assert made.status_code == 303 and made.headers["location"] == "/admin/webhooks?notice=created"
    [new] = [hub.subscriptions[i] for i in set(hub.subscriptions) - before]
    assert new.url == settings.base_url + "/api/webhooks/dwolla" and new.secret == SECRET
    page = await admin.client.get("/admin/webhooks?notice=created")
    assert "This app is subscribed." in page.text and "Subscription created" in page.text
    async with sessionmaker() as db:
        entry = await db.scalar(
            select(AuditEntry).where(AuditEntry.action == "dwolla.webhook_subscription.create")
        )
    assert entry is not None and entry.target == new.id


async def test_retention_keeps_open_cases_and_recent_event_ids(
    engine: Any, sessionmaker: Any, settings: Any
) -> None:
    from supportlens.privacy.retention import run_retention

    now = datetime.now(UTC)
    old = now - timedelta(days=settings.retention_days + 1)

    def a_case(transfer: str, status: str) -> AttentionCase:
        return AttentionCase(
            event_id=f"ev-{transfer}",
            topic="customer_transfer_failed",
            transfer_id=transfer,
            customer_email="jane@acme.io",
            amount="1.00",
            failed_at=old,
            status=status,
            created_at=old,
            closed_at=old if status == "closed" else None,
        )

    def an_event(event_id: str, received: datetime, handled: bool) -> DwollaWebhookEvent:
        return DwollaWebhookEvent(
            event_id=event_id,
            topic="customer_transfer_failed",
            resource_id="t",
            created=received,
            received_at=received,
            processed_at=received if handled else None,
            outcome="case" if handled else None,
        )

    async with sessionmaker() as db:
        db.add_all([a_case("t-closed", "closed"), a_case("t-open", "open"), a_case("t-taken", "taken")])
        db.add_all(
            [
                an_event("old-handled", old, True),
                an_event("old-unhandled", old, False),
                an_event("recent", now - timedelta(days=2), True),
            ]
        )
        await db.commit()
    report = await run_retention(engine, settings, now=now)
    async with sessionmaker() as db:
        cases = set((await db.scalars(select(AttentionCase.transfer_id))).all())
        events = set((await db.scalars(select(DwollaWebhookEvent.event_id))).all())
    assert cases == {"t-open", "t-taken"} and report.attention_cases_deleted == 1
    assert events == {"old-unhandled", "recent"} and report.webhook_events_deleted == 1


async def test_events_dwolla_could_not_be_read_are_counted_on_the_queue(
    sessionmaker: Any, signed_in: Any
) -> None:
    async with sessionmaker() as db:
        for n, seconds in enumerate((120, 45, 5)):
            db.add(
                DwollaWebhookEvent(
                    event_id=f"waiting-{n}",
                    topic="customer_transfer_failed",
                    resource_id=f"t-{n}",
                    created=datetime.now(UTC) - timedelta(seconds=seconds),
                    received_at=datetime.now(UTC) - timedelta(seconds=seconds),
                )
            )
        await db.commit()
    agent = await signed_in("agent")
    page = await agent.client.get("/partials/attention")
    assert "2 failed payments from Dwolla could not be read yet" in page.text  # the 5 s old one is in flight
