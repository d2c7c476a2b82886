"""Verifying Dwolla webhooks: signature, size, age and shape, before anything is trusted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supportlens.integrations.dwolla.webhooks import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    WebhookRejected,
    sign,
    verify_webhook,
)

SECRET = "whsec-7c1f0e5a9b"
NOW = datetime(2026, 11, 26, 10, 45, tzinfo=UTC)
TRANSFER = "9c8b7a6d-1e2f-4a3b-8c7d-6e5f4a3b2c1d"
CUSTOMER = "5b29279d-6359-4c87-a318-e09095532733"


def event(**changes: Any) -> dict[str, Any]:
    base = "https://api-sandbox.dwolla.com"
    body: dict[str, Any] = {
        "_links": {
            "self": {"href": f"{base}/events/81f6e13c-557c-4449-9331-da5c65e61095"},
            "account": {"href": f"{base}/accounts/ca32853c-48fa-40be-ae75-77b37504581b"},
            "resource": {"href": f"{base}/transfers/{TRANSFER}"},
            "customer": {"href": f"{base}/customers/{CUSTOMER}"},
        },
        "id": "81f6e13c-557c-4449-9331-da5c65e61095",
        "created": "2026-11-26T10:41:07.123Z",
        "timestamp": "2026-11-26T10:41:07.123Z",
        "topic": "customer_transfer_failed",
        "resourceId": TRANSFER,
    }
    body.update(changes)
    return body


def raw(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def rejected(
    body: bytes, signature: str | None, secrets: tuple[str, ...] = (SECRET,), **kw: Any
) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify_webhook(body, signature, secrets, now=NOW, **kw)
    return caught.value


def test_a_good_signature_gives_the_typed_event() -> None:
    body = raw(event())
    got = verify_webhook(body, sign(SECRET, body), [SECRET], now=NOW)
    assert (got.id, got.topic, got.resource_id) == (
        "81f6e13c-557c-4449-9331-da5c65e61095",
        "customer_transfer_failed",
        TRANSFER,
    )
    assert got.created == datetime(2026, 11, 26, 10, 41, 7, 123000, tzinfo=UTC)
    assert got.customer_id == CUSTOMER and got.linked_id("resource") == TRANSFER
    assert got.is_failed_transfer
    assert verify_webhook(body, sign(SECRET, body).upper(), [SECRET], now=NOW).id == got.id  # hex case


def test_either_secret_works_during_a_rotation() -> None:
    body = raw(event())
    assert verify_webhook(body, sign("new-secret", body), ["old-secret", "new-secret"], now=NOW).topic


def test_a_bad_signature_is_refused() -> None:
    body = raw(event())
    for signature in (sign("other-secret", body), sign(SECRET, body + b" "), "0" * 64, "not-hex", "ab" * 40):
        problem = rejected(body, signature)
        assert (problem.status, problem.reason, problem.field) == (401, "bad_signature", SIGNATURE_HEADER)
    tampered = raw(event(resourceId="00000000-0000-4000-8000-000000000000"))
    assert rejected(tampered, sign(SECRET, body)).reason == "bad_signature"


def test_a_missing_signature_or_secret_is_refused() -> None:
    body = raw(event())
    for signature in (None, "", "   "):
        problem = rejected(body, signature)
        assert (problem.status, problem.reason) == (401, "missing_signature")
    assert rejected(body, sign("", body), secrets=("",)).reason == "no_secret"


def test_an_oversized_body_is_refused_before_its_signature_is_computed() -> None:
    body = raw(event(padding="x" * MAX_BODY_BYTES))
    problem = rejected(body, sign(SECRET, body))
    assert (problem.status, problem.reason, problem.field) == (413, "too_large", "body")
    small = raw(event())
    assert rejected(small, sign(SECRET, small), max_bytes=100).status == 413


def test_stale_and_future_events_are_refused() -> None:
    old = raw(event(created=(NOW - timedelta(hours=73, seconds=1)).isoformat()))
    problem = rejected(old, sign(SECRET, old))
    assert (problem.status, problem.reason, problem.field) == (400, "stale", "created")
    retried = raw(event(created=(NOW - timedelta(hours=72)).isoformat()))  # Dwolla's last retry
    assert verify_webhook(retried, sign(SECRET, retried), [SECRET], now=NOW).id
    tight = raw(event())
    assert rejected(tight, sign(SECRET, tight), max_age=timedelta(minutes=1)).reason == "stale"
    ahead = raw(event(created=(NOW + timedelta(minutes=6)).isoformat()))
    assert rejected(ahead, sign(SECRET, ahead)).reason == "from_the_future"
    naive = raw(event(created="2026-11-26T10:41:07"))
    assert rejected(naive, sign(SECRET, naive)).field == "created"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (raw({k: v for k, v in event().items() if k != "topic"}), "topic"),
        (raw(event(topic="<script>alert(1)</script>")), "topic"),
        (raw(event(id="x" * 65)), "id"),
        (raw(event(resourceId=None)), "resourceId"),
        (raw(event(created="yesterday")), "created"),
        (raw(event(_links={"customer": {"href": 5}})), "_links.customer.href"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_field(body: bytes, field: str) -> None:
    problem = rejected(body, sign(SECRET, body))
    assert (problem.status, problem.reason, problem.field) == (400, "malformed", field)


def test_links_that_are_not_dwolla_resources_give_no_ids() -> None:
    body = raw(event(_links={"customer": {"href": "https://evil.example/customers/not-an-id"}}))
    got = verify_webhook(body, sign(SECRET, body), [SECRET], now=NOW)
    assert got.customer_id is None and got.linked_id("nothing") is None
