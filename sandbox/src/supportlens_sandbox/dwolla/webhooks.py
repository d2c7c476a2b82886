"""Dwolla's webhooks in the simulator: subscriptions, events, and signed deliveries with Dwolla's retries.

What Dwolla documents (developers.dwolla.com, "Webhook subscriptions"), and the simulator does:
- A subscription is `{url, secret}`; at most 10 in Sandbox (5 in Production); `secret` at most 128
  characters. It can be paused and unpaused (`POST {"paused": bool}`) and deleted.
- Every event is POSTed as JSON to each unpaused subscription's URL, signed with
  `X-Request-Signature-SHA-256`: the hex HMAC-SHA256 of the raw body, keyed with the subscription's
  secret. The body is the event resource: `id`, `created`, `timestamp`, `topic`, `resourceId` and
  `_links` {self, account, resource, customer}.
- Anything but a 2xx within 10 seconds is a failure (3xx included: redirects are not followed); the
  delivery is retried 8 times over 72 hours: after 15 min, then 45 min, 2 h, 3 h, 6 h, 12 h, 24 h and
  24 h (`webhook_retry_scale` shrinks this schedule for tests), then given up.
- Up to 10 deliveries run at once. Dwolla pauses a subscription after 400 consecutive failures (and 24
  hours without a success; the simulator counts the failures only).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2

from supportlens_sandbox.knobs import SandboxControl

SIGNATURE_HEADER = "X-Request-Signature-SHA-256"
MAX_SUBSCRIPTIONS = 10  # Dwolla Sandbox (Production: 5)
SECRET_MAX = 128
# Seconds from one attempt to the next retry (8 retries, 72 hours after the first attempt).
RETRY_DELAYS = (15 * 60, 45 * 60, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600)
CONCURRENT_DELIVERIES = 10
AUTO_PAUSE_AFTER = 400  # consecutive failures
# Topics the simulator sends when a transfer fails: Dwolla's customer-level transfer topics.
FAILURE_TOPICS = ("customer_transfer_failed", "customer_bank_transfer_failed")


def sign(secret: str, body: bytes) -> str:
    """Dwolla's webhook signature: hex HMAC-SHA256 of the raw body keyed with the subscription secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def dwolla_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class Subscription:
    id: str
    url: str
    secret: str
    created: datetime
    paused: bool = False
    consecutive_failures: int = 0


@dataclass
class Event:
    id: str
    topic: str
    resource_id: str
    created: datetime
    links: dict[str, dict[str, str]]

    def body(self) -> dict[str, Any]:
        return {
            "_links": self.links,
            "id": self.id,
            "created": dwolla_time(self.created),
            "timestamp": dwolla_time(self.created),
            "topic": self.topic,
            "resourceId": self.resource_id,
        }


@dataclass
class Attempt:
    at: datetime
    status: int | None  # None: no answer (refused, timed out)
    error: str | None = None
    seconds: float = 0.0  # from sending the request to the end of the answer
    response_body: str = ""  # the first 1,000 characters, as Dwolla's webhook log keeps them
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Delivery:
    """One event to one subscription: its attempts so far and how it ended."""

    id: str
    subscription_id: str
    event_id: str
    topic: str
    url: str = ""
    body: str = ""  # the signed JSON, as sent
    headers: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    state: str = "pending"  # pending | delivered | failed (retries exhausted) | cancelled

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriptionId": self.subscription_id,
            "eventId": self.event_id,
            "topic": self.topic,
            "state": self.state,
            "attempts": [
                {
                    "at": dwolla_time(a.at),
                    "status": a.status,
                    "error": a.error,
                    "ms": round(a.seconds * 1000, 3),
                }
                for a in self.attempts
            ],
        }


class WebhookHub:
    """The simulator's subscriptions, events (newest first) and deliveries."""

    def __init__(self, control: SandboxControl) -> None:
        self.control = control
        self.subscriptions: dict[str, Subscription] = {}
        self.events: list[Event] = []
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._client: httpx2.AsyncClient | None = None  # made on first use, in the server's event loop

    # -- subscriptions
    def subscribe(self, url: str, secret: str) -> Subscription:
        sub = Subscription(str(uuid.uuid4()), url, secret, datetime.now(UTC))
        self.subscriptions[sub.id] = sub
        return sub

    def active_count(self) -> int:
        return len(self.subscriptions)

    # -- events
    def publish(self, event_id: str, topic: str, resource_id: str, links: dict[str, dict[str, str]]) -> Event:
        """Record an event and start delivering it to every unpaused subscription."""
        event = Event(event_id, topic, resource_id, datetime.now(UTC), links)
        self.events.insert(0, event)
        for sub in list(self.subscriptions.values()):
            if sub.paused:
                continue
            delivery = Delivery(str(uuid.uuid4()), sub.id, event.id, topic, url=sub.url)
            self.deliveries.append(delivery)
            task = asyncio.get_running_loop().create_task(self._deliver(sub, event, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    def event(self, event_id: str) -> Event | None:
        return next((e for e in self.events if e.id == event_id), None)

    async def _deliver(self, sub: Subscription, event: Event, delivery: Delivery) -> None:
        raw = json.dumps(event.body(), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(sub.secret, raw),
            "X-Dwolla-Topic": event.topic,
            "User-Agent": "dwolla-webhooks (sandbox simulator)",
        }
        delivery.body, delivery.headers = raw.decode(), headers
        if self._slots is None or self._client is None:
            self._slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)
            self._client = httpx2.AsyncClient(follow_redirects=False)
        for retry in range(len(RETRY_DELAYS) + 1):
            if sub.id not in self.subscriptions or sub.paused:
                delivery.state = "cancelled"
                return
            async with self._slots:
                attempt = await self._attempt(self._client, sub.url, raw, headers)
            delivery.attempts.append(attempt)
            if attempt.status is not None and 200 <= attempt.status < 300:
                delivery.state = "delivered"
                sub.consecutive_failures = 0
                self.control.count("webhooks_delivered")
                return
            self.control.count("webhook_attempts_failed")
            sub.consecutive_failures += 1
            if sub.consecutive_failures >= AUTO_PAUSE_AFTER:
                sub.paused = True
            if retry < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[retry] * self.control.knobs.webhook_retry_scale)
        delivery.state = "failed"

    async def _attempt(
        self, client: httpx2.AsyncClient, url: str, raw: bytes, headers: dict[str, str]
    ) -> Attempt:
        at, started = datetime.now(UTC), time.perf_counter()
        try:
            timeout = self.control.knobs.webhook_timeout_seconds
            response = await client.post(url, content=raw, headers=headers, timeout=timeout)
        except httpx2.TimeoutException:
            return Attempt(at, None, "timeout", time.perf_counter() - started)
        except httpx2.TransportError as exc:
            return Attempt(at, None, type(exc).__name__, time.perf_counter() - started)
        return Attempt(at, response.status_code, None, time.perf_counter() - started, response.text[:1000])

    def in_flight(self) -> int:
        return len(self._tasks)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
