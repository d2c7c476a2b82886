"""The shared resilient HTTP layer: retries, Retry-After, breaker, limits, error mapping (edge cases on a
mock transport; the same behaviour against the simulators is in test_against_simulators.py)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx2
import pytest

from supportlens.integrations.breaker import manual_retry
from supportlens.integrations.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    in_plain_words,
)
from supportlens.integrations.http import VendorHTTP, VendorPolicy, parse_retry_after
from supportlens.integrations.ratelimits import RateLimit


def make(handler, **policy) -> VendorHTTP:
    values = {"vendor": "testvendor", "base_url": "http://upstream.test", "backoff_multiplier": 0.01}
    values.update(policy)
    return VendorHTTP(VendorPolicy(**values), transport=httpx2.MockTransport(handler))


async def test_429_with_retry_after_then_success() -> None:
    calls: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx2.Response(
                429, json={"status": "error", "errorType": "RATE_LIMIT"}, headers={"Retry-After": "0.3"}
            )
        return httpx2.Response(200, json={"ok": True})

    http = make(handler)
    assert await http.request("GET", "/x") == {"ok": True}
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.28  # waited as told
    await http.aclose()


async def test_retry_after_longer_than_the_budget_fails_at_once() -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(429, json={"code": "TooManyRequests"}, headers={"Retry-After": "300"})

    http = make(handler, retry_budget_seconds=2)
    started = time.monotonic()
    with pytest.raises(UpstreamRateLimited) as info:
        await http.request("GET", "/x")
    assert time.monotonic() - started < 0.5
    assert calls == 1
    assert info.value.retry_after == 300
    assert info.value.vendor == "testvendor"
    await http.aclose()


async def test_5xx_retried_with_backoff_then_success() -> None:
    statuses = [503, 502, 200]

    def handler(request: httpx2.Request) -> httpx2.Response:
        status = statuses.pop(0)
        return httpx2.Response(status, json={"n": 1} if status == 200 else {"message": "down"})

    http = make(handler)
    assert await http.request("GET", "/x") == {"n": 1}
    assert statuses == []
    await http.aclose()


async def test_persistent_failure_opens_the_circuit_no_retry_storm() -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(500, text="boom")

    http = make(handler, max_attempts=3, breaker_threshold=4, breaker_reset_seconds=60)
    with pytest.raises(UpstreamUnavailable):
        await http.request("GET", "/x")
    assert calls == 3
    with pytest.raises(UpstreamUnavailable):
        await http.request("GET", "/x")
    assert calls == 4  # the 4th consecutive failure opened the circuit; no more attempts
    for _ in range(20):
        with pytest.raises(UpstreamUnavailable, match="circuit open"):
            await http.request("GET", "/x")
    assert calls == 4
    assert http.breaker.state == "open"
    await http.aclose()


async def test_circuit_half_opens_and_closes_on_success() -> None:
    healthy = False

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={}) if healthy else httpx2.Response(503)

    http = make(handler, max_attempts=1, breaker_threshold=2, breaker_reset_seconds=0.2)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await http.request("GET", "/x")
    assert http.breaker.state == "open"
    healthy = True
    await asyncio.sleep(0.25)
    assert http.breaker.state == "half_open"
    assert await http.request("GET", "/x") == {}
    assert http.breaker.state == "closed"
    await http.aclose()


async def test_a_manual_retry_lets_one_call_through_an_open_circuit() -> None:
    """An agent's Retry right after the vendor recovered succeeds at once, without the cool-down."""
    healthy = False
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(200, json={}) if healthy else httpx2.Response(503)

    http = make(handler, max_attempts=1, breaker_threshold=2, breaker_reset_seconds=60)
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await http.request("GET", "/x")
    assert http.breaker.state == "open" and calls == 2
    with manual_retry(), pytest.raises(UpstreamUnavailable):  # still down: one call, open again
        await http.request("GET", "/x")
    assert calls == 3 and http.breaker.state == "open"
    healthy = True
    with pytest.raises(UpstreamUnavailable, match="circuit open"):  # automatic calls still wait
        await http.request("GET", "/x")
    assert calls == 3
    with manual_retry():
        assert await http.request("GET", "/x") == {}
    assert http.breaker.state == "closed" and calls == 4
    await http.aclose()


async def test_a_manual_retry_is_one_trial_however_many_calls_wait() -> None:
    release = asyncio.Event()
    healthy = False

    async def handler(request: httpx2.Request) -> httpx2.Response:
        if not healthy:
            return httpx2.Response(503)
        await release.wait()
        return httpx2.Response(200, json={})

    http = make(handler, max_attempts=1, breaker_threshold=1, breaker_reset_seconds=60)
    with pytest.raises(UpstreamUnavailable):
        await http.request("GET", "/x")
    healthy = True
    with manual_retry():
        trial = asyncio.create_task(http.request("GET", "/x"))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamUnavailable, match="circuit open"):  # the trial is under way
            await http.request("GET", "/x")
    release.set()
    assert await trial == {}
    await http.aclose()


async def test_a_call_nested_in_the_trial_belongs_to_it() -> None:
    """Dwolla's token is fetched inside the trial call's headers: the one trial covers both."""
    healthy = False
    paths: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        paths.append(request.url.path)
        if not healthy:
            return httpx2.Response(503)
        return httpx2.Response(200, json={"token": "t"} if request.url.path == "/token" else {"ok": True})

    http = make(handler, max_attempts=1, breaker_threshold=1, breaker_reset_seconds=60)

    async def token_headers() -> dict[str, str]:
        token = await http.request("POST", "/token", idempotent=False)
        return {"Authorization": f"Bearer {token['token']}"}

    with pytest.raises(UpstreamUnavailable):
        await http.request("GET", "/x", headers_factory=token_headers)
    assert http.breaker.state == "open" and paths == ["/token"]
    healthy = True
    with manual_retry():
        assert await http.request("GET", "/x", headers_factory=token_headers) == {"ok": True}
    assert paths == ["/token", "/token", "/x"] and http.breaker.state == "closed"
    await http.aclose()


async def test_failures_in_plain_words() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(503)

    http = make(handler, max_attempts=3, breaker_threshold=5, breaker_reset_seconds=60)
    with pytest.raises(UpstreamUnavailable) as first:
        await http.request("GET", "/x")
    assert first.value.tries == 3
    assert in_plain_words(first.value).startswith("is not answering (3 tries over ")
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await http.request("GET", "/x")
    with pytest.raises(UpstreamUnavailable) as fast:
        await http.request("GET", "/x")
    assert fast.value.tries == 5  # the failures in a row that opened the circuit
    assert in_plain_words(fast.value).startswith("is not answering (5 tries over ")
    assert in_plain_words(UpstreamForbidden("v", "request refused (HTTP 403)", status=403)) == (
        "refused: SupportLens lacks a permission there"
    )
    assert in_plain_words(UpstreamError("v", "?")) == "could not be read"
    await http.aclose()


async def test_malformed_json_is_a_bad_response_and_not_retried() -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(200, content=b'{"results": [', headers={"content-type": "application/json"})

    http = make(handler)
    with pytest.raises(UpstreamBadResponse, match="malformed JSON"):
        await http.request("GET", "/x")
    assert calls == 1
    await http.aclose()


async def test_4xx_is_not_retried_and_names_the_vendor_code() -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        return httpx2.Response(
            404, json={"code": "NotFound", "message": "The requested resource was not found."}
        )

    http = make(handler)
    with pytest.raises(UpstreamBadResponse) as info:
        await http.request("GET", "/customers/x")
    assert info.value.status == 404
    assert "NotFound" in str(info.value)
    assert calls == 1
    await http.aclose()


async def test_403_and_404_are_typed_with_the_vendor_code_and_400_stays_generic() -> None:
    answers = {
        "/scope": (403, {"status": "error", "message": "no scope", "category": "MISSING_SCOPES"}),
        "/gone": (404, {"code": "NotFound", "message": "The requested resource was not found."}),
        "/bad": (400, {"status": "error", "message": "bad", "category": "VALIDATION_ERROR"}),
        "/html": (404, None),
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        status, body = answers[request.url.path]
        return httpx2.Response(status, json=body) if body else httpx2.Response(status, text="<h1>no</h1>")

    http = make(handler)
    with pytest.raises(UpstreamForbidden) as forbidden:
        await http.request("GET", "/scope")
    assert (forbidden.value.status, forbidden.value.code) == (403, "MISSING_SCOPES")
    with pytest.raises(UpstreamNotFound) as gone:
        await http.request("GET", "/gone")
    assert (gone.value.code, str(gone.value)) == (
        "NotFound",
        "testvendor: request refused (HTTP 404, NotFound)",
    )
    with pytest.raises(UpstreamBadResponse) as bad:
        await http.request("GET", "/bad")
    assert type(bad.value) is UpstreamBadResponse and bad.value.code == "VALIDATION_ERROR"
    with pytest.raises(UpstreamNotFound) as html:
        await http.request("GET", "/html")
    assert html.value.code is None and str(html.value) == "testvendor: request refused (HTTP 404)"
    await http.aclose()


async def test_a_call_that_is_not_idempotent_is_retried_after_429_only() -> None:
    answers = [503, 429, 201]
    seen: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(answers[len(seen)])
        return httpx2.Response(seen[-1], json={"id": "1"})

    http = make(handler)
    with pytest.raises(UpstreamUnavailable):  # the 503 may have created the object: not sent again
        await http.request("POST", "/notes", json_body={}, idempotent=False)
    assert seen == [503]
    assert await http.request("POST", "/notes", json_body={}, idempotent=False) == {"id": "1"}
    assert seen == [503, 429, 201]  # a 429 was not processed: sent again
    await http.aclose()


async def test_connection_refused_is_unavailable_and_timeout_is_timeout() -> None:
    def refused(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    http = make(refused, max_attempts=2)
    with pytest.raises(UpstreamUnavailable, match="connection failed"):
        await http.request("GET", "/x")
    await http.aclose()

    reads = 0

    def slow(request: httpx2.Request) -> httpx2.Response:
        nonlocal reads
        reads += 1
        raise httpx2.ReadTimeout("slow", request=request)

    http = make(slow)
    with pytest.raises(UpstreamTimeout):
        await http.request("GET", "/x")
    assert reads == 1  # a hung upstream is not asked again and again
    await http.aclose()


async def test_401_renews_credentials_once() -> None:
    seen: list[str] = []
    tokens = iter(["t1", "t2", "t3"])
    current = {"token": next(tokens)}

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer t1":
            return httpx2.Response(401, json={"code": "ExpiredAccessToken"})
        return httpx2.Response(200, json={"ok": 1})

    async def headers():
        return {"Authorization": f"Bearer {current['token']}"}

    async def renew():
        current["token"] = next(tokens)

    http = make(handler)
    assert await http.request("GET", "/x", headers_factory=headers, on_unauthorized=renew) == {"ok": 1}
    assert seen == ["Bearer t1", "Bearer t2"]
    await http.aclose()


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def _burst_times(http: VendorHTTP, n: int) -> list[float]:
    await asyncio.gather(*(http.request("GET", "/search", bucket="search") for _ in range(n)))
    return sorted(http.stamps)  # type: ignore[attr-defined]


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_client_side_rate_limit_holds_under_a_burst(storage: str) -> None:
    stamps: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        stamps.append(time.monotonic())
        return httpx2.Response(200, json={})

    redis_url = "redis://127.0.0.1:6379/0" if storage == "redis" else None
    http = make(
        handler,
        vendor=f"burst-{uuid.uuid4().hex[:8]}",  # a fresh Redis key space per run
        limits={"search": RateLimit(5, 1.0)},
        redis_url=redis_url,
    )
    http.stamps = stamps  # type: ignore[attr-defined]
    started = time.monotonic()
    times = await _burst_times(http, 9)
    assert len(times) == 9
    assert _max_in_window(times, 1.0) <= 5
    assert time.monotonic() - started >= 0.8  # the burst really was spread out
    await http.aclose()


async def _acquire_times(limiter, bucket: str, n: int) -> list[float]:
    started = time.monotonic()
    times = []
    for _ in range(n):
        await limiter.acquire(bucket)
        times.append(time.monotonic() - started)
    return times


async def test_behind_redis_a_short_window_is_only_paced_a_long_one_keeps_the_vendor_pace() -> None:
    from supportlens.integrations.ratelimits import LocalLimiter

    limits = {"search": RateLimit(5, 1.0), "general": RateLimit(20, 10.0)}
    alone = LocalLimiter("v", limits, wait_seconds=5)
    paced = LocalLimiter("v", limits, wait_seconds=5, pace_only=True)
    # Alone it must hold HubSpot's 5 per second by itself: 255 ms between searches. Behind Redis, which
    # holds the limit for every replica, 100 ms (twice the vendor's rate) is enough.
    assert (await _acquire_times(alone, "search", 3))[-1] >= 0.45
    assert 0.15 <= (await _acquire_times(paced, "search", 3))[-1] < 0.4
    # A 10 s window keeps the pace that spreads it over the window (2 at once, then 1.8 per second).
    assert (await _acquire_times(paced, "general", 4))[-1] >= 0.9
