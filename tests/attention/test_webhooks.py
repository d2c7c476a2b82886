"""POST /api/webhooks/dwolla through the app on PostgreSQL: a good signature is stored once with its job;
a bad or missing signature, an oversized body and a stale or future event are refused with nothing
stored; a replayed event id is acknowledged (200) without a second row or job."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from supportlens.attention.models import DwollaWebhookEvent
from supportlens.attention.service import ATTENTION_QUEUE, HANDLE_EVENT_TASK
from supportlens.integrations.dwolla.webhooks import SIGNATURE_HEADER, sign

URL = "/api/webhooks/dwolla"
SECRET = "whsec-test-5f1c9a"
OLD_SECRET = "whsec-test-old-77d2"
DWOLLA = "https://api-sandbox.dwolla.com"


@pytest.fixture
def settings(settings_factory: Any) -> Any:
    return settings_factory(
        dwolla_webhook_secret=SECRET, dwolla_webhook_previous_secret=OLD_SECRET, dwolla_webhook_max_bytes=4096
    )


def event_body(event_id: str | None = None, *, created: datetime | None = None, **extra: Any) -> bytes:
    event_id = event_id or str(uuid.uuid4())
    transfer, customer = str(uuid.uuid4()), str(uuid.uuid4())
    at = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = {
        "_links": {
            "self": {"href": f"{DWOLLA}/events/{event_id}"},
            "resource": {"href": f"{DWOLLA}/transfers/{transfer}"},
            "customer": {"href": f"{DWOLLA}/customers/{customer}"},
        },
        "id": event_id,
        "created": at,
        "timestamp": at,
        "topic": "customer_transfer_failed",
        "resourceId": transfer,
        **extra,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}


async def stored(db: Any) -> tuple[int, int]:
    """(webhook events stored, attention jobs enqueued)."""
    events = await db.scalar(select(func.count()).select_from(DwollaWebhookEvent))
    jobs = await db.scalar(
        text("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :q AND task_name = :t"),
        {"q": ATTENTION_QUEUE, "t": HANDLE_EVENT_TASK},
    )
    await db.rollback()
    return int(events or 0), int(jobs or 0)


async def test_a_good_signature_is_stored_once_with_its_job(client: Any, db: Any) -> None:
    event_id = str(uuid.uuid4())
    body = event_body(event_id)
    answer = await client.post(URL, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True, "duplicate": False}
    assert await stored(db) == (1, 1)
    row = await db.get(DwollaWebhookEvent, event_id)
    assert row.topic == "customer_transfer_failed" and row.processed_at is None
    assert row.customer_dwolla_id is not None
    job_args = await db.scalar(text("SELECT args FROM procrastinate_jobs WHERE queue_name = 'attention'"))
    assert job_args == {"event_id": event_id}


async def test_the_previous_secret_still_verifies_during_a_rotation(client: Any, db: Any) -> None:
    body = event_body()
    answer = await client.post(URL, content=body, headers=signed(body, OLD_SECRET))
    assert answer.status_code == 200
    assert await stored(db) == (1, 1)


async def test_a_replayed_event_id_is_acknowledged_without_a_second_row_or_job(client: Any, db: Any) -> None:
    body = event_body()
    first = await client.post(URL, content=body, headers=signed(body))
    again = await client.post(URL, content=body, headers=signed(body))
    assert first.status_code == again.status_code == 200
    assert again.json() == {"received": True, "duplicate": True}
    assert await stored(db) == (1, 1)


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("bad_signature", 401, SIGNATURE_HEADER),
        ("wrong_secret", 401, SIGNATURE_HEADER),
        ("missing_header", 401, SIGNATURE_HEADER),
        ("oversized", 413, "body"),
        ("oversized_undeclared", 413, "body"),
        ("stale", 400, "created"),
        ("future", 400, "created"),
        ("not_json", 400, "body"),
        ("bad_id", 400, "id"),
    ],
)
async def test_refused_webhooks_store_nothing(
    client: Any, db: Any, case: str, status: int, field: str
) -> None:
    body = event_body()
    headers = signed(body)
    if case == "bad_signature":
        headers[SIGNATURE_HEADER] = "0" * 64
    elif case == "wrong_secret":
        headers = signed(body, "someone-else")
    elif case == "missing_header":
        del headers[SIGNATURE_HEADER]
    elif case == "oversized":
        body = event_body(padding="x" * 5000)
        headers = signed(body)
    elif case == "stale":
        body = event_body(created=datetime.now(UTC) - timedelta(hours=74))
        headers = signed(body)
    elif case == "future":
        body = event_body(created=datetime.now(UTC) + timedelta(hours=1))
        headers = signed(body)
    elif case == "not_json":
        body = b"id=1&topic=x"
        headers = signed(body)
    elif case == "bad_id":
        body = event_body("<script>alert(1)</script>")
        headers = signed(body)
    if case == "oversized_undeclared":

        async def chunks() -> Any:  # streamed, no Content-Length: the cap holds while reading
            for _ in range(10):
                yield b"x" * 1000

        answer = await client.post(URL, content=chunks(), headers=headers)
    else:
        answer = await client.post(URL, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["field"] == field
    assert "<script>" not in answer.text
    assert await stored(db) == (0, 0)


async def test_without_a_configured_secret_every_webhook_is_refused(
    settings_factory: Any, engine: Any, db: Any
) -> None:
    import httpx2

    from supportlens.app import create_app

    app = create_app(settings_factory())
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            body = event_body()
            answer = await c.post(URL, content=body, headers=signed(body, ""))
    assert answer.status_code == 401
    assert await stored(db) == (0, 0)
