"""Spike alerts: detection over stored counts, the signed webhook, and its deliveries.

Detection (`detect`, the periodic task `supportlens.issues.spikes` every five minutes) feeds each
series (per issue, and per page template: the sum of its issues) the closed five-minute buckets it
has not seen yet, through the pure detector `issues.spikes`, and stores the new state, the alerts
and one pending delivery per alert in one transaction. `last_bucket` per series makes a repeated
run feed nothing twice; the unique (series, bucket) of `spike_alerts` keeps an alert single even if
two runs overlapped. A new series replays at most `HISTORY_DAYS` of its counts to learn its baseline;
alerts found while replaying older buckets than `NOTIFY_WITHIN` are stored but not sent.

Delivery (`deliver_pending`, the periodic task `supportlens.issues.alert_deliveries` every minute)
is separate, so a slow or dead receiver never holds the detector up. Each message is POSTed to the
admin's URL with a bounded timeout, no redirects followed, retried with tenacity (3 attempts per run,
up to `MAX_ATTEMPTS` in all), every attempt counted on its `alert_deliveries` row.

Signature: `X-SupportLens-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
A receiver recomputes the HMAC over the timestamp, a dot and the raw body with the shared secret,
compares in constant time, and rejects timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from supportlens.config import Settings
from supportlens.issues import spikes
from supportlens.issues.alert_models import AlertDelivery, AlertWebhook, SpikeAlert, SpikeSeries

log = logging.getLogger(__name__)

BUCKET = timedelta(minutes=5)
HISTORY_DAYS = 7
NOTIFY_WITHIN = timedelta(minutes=15)
MAX_ATTEMPTS = 9
SIGNATURE_HEADER = "X-SupportLens-Signature"
MAX_URL_LENGTH = 500
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 200
_NONCE = 12


class WebhookConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# ---- configuration --------------------------------------------------------------------------------


def _key(settings: Settings) -> bytes:
    secret = settings.secret_key.get_secret_value().encode()
    return hashlib.sha256(b"supportlens-alert-webhook-v1:" + secret).digest()


def encrypt_secret(settings: Settings, secret: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_key(settings)).encrypt(nonce, secret.encode(), b"alert-webhook")
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decrypt_secret(settings: Settings, stored: str) -> str:
    blob = base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))
    return AESGCM(_key(settings)).decrypt(blob[:_NONCE], blob[_NONCE:], b"alert-webhook").decode()


def validate_url(url: str, *, production: bool) -> str:
    """The admin's URL: http(s) only (https in production), a host, no credentials, no fragment;
    in production not a literal private, loopback or link-local address (no probing the inside)."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise WebhookConfigError("url", f"give a URL of at most {MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 for c in url):
        raise WebhookConfigError("url", "the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    allowed = ("https",) if production else ("https", "http")
    if parts.scheme not in allowed:
        raise WebhookConfigError("url", f"the URL must start with {' or '.join(s + '://' for s in allowed)}")
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        raise WebhookConfigError("url", "the URL needs a host and no user, password or #fragment")
    if production:
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            address = None
        if address is not None and not address.is_global:
            raise WebhookConfigError("url", "the URL must not point at a private or local address")
        if parts.hostname == "localhost" or parts.hostname.endswith(".localhost"):
            raise WebhookConfigError("url", "the URL must not point at a private or local address")
    return url


def validate_secret(secret: str) -> str:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        raise WebhookConfigError(
            "secret", f"the secret must be {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters long"
        )
    if any(ord(c) < 33 or ord(c) > 126 for c in secret):
        raise WebhookConfigError("secret", "the secret must be printable ASCII without spaces")
    return secret


async def get_webhook(db: AsyncSession) -> AlertWebhook | None:
    return await db.get(AlertWebhook, 1)


async def save_webhook(
    db: AsyncSession, settings: Settings, *, url: str, secret: str | None, enabled: bool, agent_id: Any
) -> AlertWebhook:
    """Validate and store (no commit). A blank secret keeps the stored one."""
    url = validate_url(url, production=settings.environment == "production")
    current = await get_webhook(db)
    if secret:
        sealed = encrypt_secret(settings, validate_secret(secret))
    elif current is not None:
        sealed = current.secret_encrypted
    else:
        raise WebhookConfigError("secret", "give a signing secret")
    if current is None:
        current = AlertWebhook(id=1, url=url, secret_encrypted=sealed, enabled=enabled, updated_by=agent_id)
        db.add(current)
    else:
        current.url, current.secret_encrypted, current.enabled = url, sealed, enabled
        current.updated_by, current.updated_at = agent_id, datetime.now(tz=UTC)
    return current


# ---- signing ---------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse old timestamps."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# ---- detection -------------------------------------------------------------------------------------


def _floor(moment: datetime) -> datetime:
    return moment - timedelta(
        minutes=moment.minute % 5, seconds=moment.second, microseconds=moment.microsecond
    )


def _day_bucket(bucket_start: datetime) -> int:
    return (bucket_start.hour * 60 + bucket_start.minute) // 5


def _dump(state: spikes.SpikeState) -> dict[str, Any]:
    return asdict(state)


def _load(data: dict[str, Any]) -> spikes.SpikeState:
    data = dict(data)
    data["season_counts"] = tuple(data["season_counts"])
    data["season_expected"] = tuple(data["season_expected"])
    data["recent"] = tuple(tuple(r) for r in data["recent"])
    return spikes.SpikeState(**data)


_COUNTS = {
    "issue": text(
        "SELECT issue_id::text AS series, bucket_start, sum(count) AS n FROM issue_buckets "
        "WHERE bucket_start >= :since AND bucket_start < :until GROUP BY issue_id, bucket_start"
    ),
    "page": text(
        "SELECT page AS series, bucket_start, sum(count) AS n FROM issue_buckets "
        "WHERE bucket_start >= :since AND bucket_start < :until GROUP BY page, bucket_start"
    ),
}


def _text(alert: SpikeAlert, title: str) -> str:
    what = f"issue #{alert.issue_id} {title}" if alert.issue_id is not None else f"page {alert.page}"
    minutes = alert.window_buckets * 5
    return (
        f"Spiking now: {what}: {alert.observed} in {minutes} min "
        f"where {alert.expected:.1f} were expected (p={alert.p_value:.1e})"
    )


async def detect(
    db: AsyncSession, *, now: datetime | None = None, params: spikes.SpikeParams = spikes.SpikeParams()
) -> list[SpikeAlert]:
    """Feed every series its closed buckets not yet seen; store states, alerts and deliveries; commit."""
    now = now or datetime.now(tz=UTC)
    until = _floor(now)  # buckets before this one are closed
    since = until - timedelta(days=HISTORY_DAYS)
    series_rows = {s.key: s for s in (await db.scalars(select(SpikeSeries).with_for_update())).all()}
    raised: list[SpikeAlert] = []
    for kind, query in _COUNTS.items():
        counts: dict[str, dict[datetime, int]] = {}
        for count_row in await db.execute(query, {"since": since, "until": until}):
            counts.setdefault(count_row.series, {})[count_row.bucket_start] = int(count_row.n)
        for name, by_bucket in counts.items():
            key = f"{kind}:{name}"[:600]
            row = series_rows.get(key)
            if row is None:
                start = min(by_bucket)
                state = spikes.SpikeState()
            else:
                start = row.last_bucket + BUCKET
                state = _load(row.state)
            bucket = max(start, since)
            fed_any = False
            while bucket < until:
                state, spike = spikes.step(
                    state, by_bucket.get(bucket, 0), params, day_bucket=_day_bucket(bucket)
                )
                fed_any = True
                if spike is not None:
                    alert = SpikeAlert(
                        series_key=key,
                        issue_id=int(name) if kind == "issue" else None,
                        page=name if kind == "page" else None,
                        bucket_start=bucket,
                        window_buckets=spike.window_buckets,
                        observed=spike.observed,
                        expected=spike.expected,
                        p_value=spike.p_value,
                    )
                    db.add(alert)
                    if until - bucket <= NOTIFY_WITHIN:
                        raised.append(alert)
                bucket += BUCKET
            if not fed_any:
                continue
            if row is None:
                db.add(
                    SpikeSeries(
                        key=key,
                        issue_id=int(name) if kind == "issue" else None,
                        page=name if kind == "page" else None,
                        last_bucket=until - BUCKET,
                        state=_dump(state),
                    )
                )
            else:
                row.last_bucket, row.state = until - BUCKET, _dump(state)
    await db.flush()
    titles: dict[int, str] = {}
    issue_ids = [a.issue_id for a in raised if a.issue_id is not None]
    if issue_ids:
        rows = await db.execute(text("SELECT id, title FROM issues WHERE id = ANY(:ids)"), {"ids": issue_ids})
        titles = {r.id: r.title for r in rows}
    for alert in raised:
        payload = {
            "text": _text(alert, titles.get(alert.issue_id or 0, "")),
            "kind": "spike",
            "issue_id": alert.issue_id,
            "page": alert.page,
            "bucket_start": alert.bucket_start.isoformat(),
            "window_minutes": alert.window_buckets * 5,
            "observed": alert.observed,
            "expected": round(alert.expected, 2),
            "p_value": alert.p_value,
        }
        await enqueue(db, kind="spike", dedup_key=f"spike:{alert.id}", payload=payload, alert_id=alert.id)
    await db.commit()
    return raised


async def enqueue(
    db: AsyncSession, *, kind: str, dedup_key: str, payload: dict[str, Any], alert_id: int | None = None
) -> bool:
    """A pending delivery, once per dedup key (no commit). False when it already existed."""
    result = await db.execute(
        pg_insert(AlertDelivery)
        .values(kind=kind, dedup_key=dedup_key, payload=payload, alert_id=alert_id, status="pending")
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(AlertDelivery.id)
    )
    return result.scalar_one_or_none() is not None


async def spiking_now(
    db: AsyncSession, *, now: datetime | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Alerts whose series is still alerting, newest first, for the home page."""
    rows = await db.execute(
        text(
            "SELECT DISTINCT ON (a.series_key) a.series_key, a.issue_id, a.page, a.bucket_start, a.observed, "
            "a.expected, a.window_buckets, i.title, i.kind FROM spike_alerts a "
            "JOIN spike_series s ON s.key = a.series_key AND (s.state->>'alerting')::boolean "
            "LEFT JOIN issues i ON i.id = a.issue_id "
            "ORDER BY a.series_key, a.bucket_start DESC"
        )
    )
    items = [dict(r._mapping) for r in rows]
    items.sort(key=lambda r: r["bucket_start"], reverse=True)
    return items[:limit]


# ---- delivery --------------------------------------------------------------------------------------


class _Retryable(Exception):
    pass


async def _post(client: httpx.AsyncClient, url: str, body: bytes, secret: str) -> int:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SupportLens-Alerts/1",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _Retryable(type(exc).__name__) from None
    if response.status_code >= 500 or response.status_code == 429:
        raise _Retryable(f"HTTP {response.status_code}")
    return response.status_code


async def deliver_pending(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    limit: int = 50,
) -> int:
    """Send pending deliveries; returns how many were delivered."""
    async with sessionmaker() as db:
        hook = await get_webhook(db)
        if hook is None or not hook.enabled:
            return 0
        secret = decrypt_secret(settings, hook.secret_encrypted)
        url = hook.url
        pending = (
            await db.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.status == "pending")
                .order_by(AlertDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        delivered = 0
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(settings.alert_webhook_timeout_seconds),
            follow_redirects=False,  # a redirect could lead the signed body anywhere
            transport=transport,
        ) as client:
            for delivery in pending:
                body = json.dumps(delivery.payload, separators=(",", ":")).encode()
                code: int | None = None
                error: str | None = None
                try:
                    async for attempt in AsyncRetrying(
                        stop=stop_after_attempt(3),
                        wait=wait_exponential(multiplier=settings.alert_webhook_retry_wait_seconds, max=10),
                        retry=retry_if_exception_type(_Retryable),
                        reraise=True,
                    ):
                        with attempt:
                            delivery.attempts += 1
                            code = await _post(client, url, body, secret)
                except _Retryable as exc:
                    error = str(exc)
                delivery.last_status_code = code
                if code is not None and 200 <= code < 300:
                    delivery.status, delivery.delivered_at, delivery.last_error = (
                        "delivered",
                        datetime.now(tz=UTC),
                        None,
                    )
                    delivered += 1
                else:
                    delivery.last_error = error or f"HTTP {code}"
                    # A 4xx is the receiver's answer: trying again will not change it.
                    if code is not None or delivery.attempts >= MAX_ATTEMPTS:
                        delivery.status = "failed"
                    log.warning(
                        "alert delivery failed", extra={"delivery": delivery.id, "error": delivery.last_error}
                    )
        await db.commit()
        return delivered


async def recent_deliveries(db: AsyncSession, limit: int = 20) -> list[AlertDelivery]:
    return list(
        (await db.scalars(select(AlertDelivery).order_by(AlertDelivery.id.desc()).limit(limit))).all()
    )
