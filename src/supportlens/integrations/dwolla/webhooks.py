"""Verifying a Dwolla webhook and reading it as a typed event (pure: no I/O, the clock is passed in).

Dwolla signs each webhook with `X-Request-Signature-SHA-256`: the hex HMAC-SHA256 of the raw request
body, keyed with the secret given when the subscription was made. `verify_webhook` checks, in this
order, so that nothing unauthenticated is parsed:

1. size: a body over `max_bytes` is refused before anything else (Dwolla's events are under 2 KB);
2. signature: present, and equal (constant-time) to the HMAC under one of `secrets` (two during a
   secret rotation);
3. shape: JSON with `id`, `topic`, `resourceId`, `created` and `_links` of bounded, plain values;
4. age: `created` no older than `max_age` and not ahead of the clock by more than `max_skew`.

Why `max_age` defaults to 73 hours: Dwolla retries a delivery 8 times over 72 hours with the same body,
so a tighter bound would refuse Dwolla's own retries. Replays inside the window are caught by the
event id, which the receiver stores (at least as long as `max_age`) and acknowledges a second time
without doing the work again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SIGNATURE_HEADER = "X-Request-Signature-SHA-256"
MAX_BODY_BYTES = 16 * 1024
MAX_AGE = timedelta(hours=73)
MAX_SKEW = timedelta(minutes=5)
# Topics that mean a transfer did not go through (the customer-level ones carry a `customer` link).
FAILED_TRANSFER_TOPICS = frozenset(
    {"customer_transfer_failed", "customer_bank_transfer_failed", "transfer_failed", "bank_transfer_failed"}
)
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_UUID_PATH = re.compile(r"/(customers|transfers|accounts|events)/([0-9a-fA-F-]{36})/?$")


class WebhookRejected(Exception):
    """The webhook is refused. `status` is the HTTP answer to give, `field` what was wrong (for problem
    details), `reason` a stable code for logs and metrics."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field


@dataclass(frozen=True)
class DwollaEvent:
    id: str
    topic: str
    resource_id: str
    created: datetime
    links: dict[str, str]  # rel -> href (self, account, resource, customer)

    def linked_id(self, rel: str) -> str | None:
        """The id at the end of a link such as `customer` → `.../customers/{id}`."""
        href = self.links.get(rel)
        found = _UUID_PATH.search(urlsplit(href).path) if href else None
        return found.group(2).lower() if found else None

    @property
    def customer_id(self) -> str | None:
        return self.linked_id("customer")

    @property
    def is_failed_transfer(self) -> bool:
        return self.topic in FAILED_TRANSFER_TOPICS


class _Link(BaseModel):
    model_config = ConfigDict(extra="ignore")
    href: str = Field(max_length=2048)


class _WireEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
    topic: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    resource_id: str = Field(alias="resourceId", min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")
    created: datetime
    links: dict[str, _Link] = Field(default_factory=dict, alias="_links", max_length=20)


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_webhook(
    body: bytes,
    signature: str | None,
    secrets: Sequence[str],
    *,
    now: datetime,
    max_bytes: int = MAX_BODY_BYTES,
    max_age: timedelta = MAX_AGE,
    max_skew: timedelta = MAX_SKEW,
) -> DwollaEvent:
    """The event in `body`, or WebhookRejected (413 too large, 401 signature, 400 shape or age)."""
    if len(body) > max_bytes:
        raise WebhookRejected(413, "too_large", f"the body is over {max_bytes} bytes", "body")
    if not signature or not signature.strip():
        raise WebhookRejected(
            401, "missing_signature", f"the {SIGNATURE_HEADER} header is missing", SIGNATURE_HEADER
        )
    given = signature.strip()
    if not _HEX_SHA256.match(given):
        raise WebhookRejected(401, "bad_signature", "the signature does not match", SIGNATURE_HEADER)
    usable = [s for s in secrets if s]
    if not usable:
        raise WebhookRejected(401, "no_secret", "no webhook secret is configured", SIGNATURE_HEADER)
    # Every secret is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(sign(secret, body).encode(), given.lower().encode()) for secret in usable]
    if not any(matches):
        raise WebhookRejected(401, "bad_signature", "the signature does not match", SIGNATURE_HEADER)
    event = _parse(body)
    if event.created.tzinfo is None:
        raise WebhookRejected(400, "malformed", "created must carry a time zone", "created")
    if event.created < now - max_age:
        raise WebhookRejected(400, "stale", f"the event was created more than {max_age} ago", "created")
    if event.created > now + max_skew:
        raise WebhookRejected(400, "from_the_future", "the event was created in the future", "created")
    return event


def _parse(body: bytes) -> DwollaEvent:
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookRejected(400, "malformed", "the body is not JSON", "body") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "malformed", "the body is not a JSON object", "body")
    try:
        wire = _WireEvent.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = (".".join(str(p) for p in first["loc"]) or "body")[:64]  # keys are the sender's text
        raise WebhookRejected(400, "malformed", f"{where}: {first['msg']}", where) from None
    return DwollaEvent(
        id=wire.id.lower(),
        topic=wire.topic,
        resource_id=wire.resource_id.lower(),
        created=wire.created,
        links={rel: link.href for rel, link in wire.links.items()},
    )
